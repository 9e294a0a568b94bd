// StorageTest: the fixture of the storage conformance suite, parameterised over the registered
// backends (backend.hpp). Each test gets a fresh database, a TestHost and a loaded, initialised
// plugin, plus helpers that create the records most tests need.
//
// Ownership: the fixture owns the database, the host and the plugin instance for one test.
// Thread-safety: the helpers are for the test's main thread; storage() itself may be shared.
#pragma once

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include <samokoder/sdk/storage.hpp>

#include "backend.hpp"
#include "plugin_harness.hpp"
#include "test_host.hpp"

namespace samokoder::testing {

// Unwraps a Result or fails the current test (with the Status) and returns from it.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL(STORAGE_TEST_CONCAT(result_, __LINE__), lhs, expr)
#define STORAGE_TEST_CONCAT_INNER(a, b) a##b
#define STORAGE_TEST_CONCAT(a, b) STORAGE_TEST_CONCAT_INNER(a, b)
#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr)                     \
  auto tmp = (expr);                                                  \
  ASSERT_TRUE(tmp.ok()) << #expr << ": " << tmp.status().to_string(); \
  lhs = std::move(*tmp)
// Each takes a Status or a Result and streams further context like the gtest macros.
#define STORAGE_CHECK_STATUS_(expr, ok_when, on_failure)                                           \
  switch (0)                                                                                       \
  case 0:                                                                                          \
  default:                                                                                         \
    if (const ::samokoder::sdk::Status status_ = ::samokoder::testing::status_of(expr); ok_when) { \
    } else                                                                                         \
      on_failure() << #expr << ": " << status_.to_string() << " "
#define ASSERT_OK(expr) STORAGE_CHECK_STATUS_(expr, status_.ok(), FAIL)
#define EXPECT_OK(expr) STORAGE_CHECK_STATUS_(expr, status_.ok(), ADD_FAILURE)
#define EXPECT_CODE(expr, code_)                                                                  \
  STORAGE_CHECK_STATUS_(expr, status_.code() == ::samokoder::sdk::StatusCode::code_, ADD_FAILURE) \
      << "expected " #code_

// A well-formed id no row has: what "not found" tests look up.
inline constexpr char kUnknownId[] = "0190f1d2a3b47c5d8e9f00112233aabb";

inline sdk::Status status_of(const sdk::Status& s) {
  return s;
}
template <typename T>
sdk::Status status_of(const sdk::Result<T>& r) {
  return r.status();
}

class StorageTest : public ::testing::TestWithParam<StorageBackend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  sdk::Storage& storage() { return loaded_->storage(); }
  TestHost& host() { return *host_; }
  BackendDatabase& database() { return *database_; }

  // Shuts the plugin down and loads a fresh instance on the same database.
  void reopen();
  // Loads another instance on the same database with its own host (or returns init's failure).
  sdk::Result<std::unique_ptr<LoadedStorage>> load_another(TestHost& host);
  void close() { loaded_.reset(); }

  // Helpers; each fails the test on error (check with ASSERT_NO_FATAL_FAILURE where it matters).
  sdk::User make_user(const std::string& email);
  sdk::Project make_project(const sdk::User& owner, const std::string& name = "app");
  sdk::Run make_run(const sdk::Project& project, const std::string& state = "queued");

 private:
  std::unique_ptr<BackendDatabase> database_;
  std::unique_ptr<TestHost> host_;
  std::unique_ptr<LoadedStorage> loaded_;
};

// Instantiates a StorageTest subclass for every registered backend.
#define SAMOKODER_STORAGE_TEST_SUITE(Suite)                                               \
  INSTANTIATE_TEST_SUITE_P(                                                               \
      Backends, Suite, ::testing::ValuesIn(::samokoder::testing::storage_backends()),     \
      [](const ::testing::TestParamInfo<::samokoder::testing::StorageBackend>& backend) { \
        return backend.param.name;                                                        \
      })

}  // namespace samokoder::testing

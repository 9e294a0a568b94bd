// What the gateway suites share about the kernel around the gateway: the user a call is made for, that
// user's sealed provider keys and recorded attempts in the storage plugin, and a log sink that keeps
// every line for the check that no key is ever in one. Users of sqlite_storage_entry define
// SAMOKODER_PLUGIN_DIR.
//
// Ownership: the functions borrow the plugin manager (its storage plugin must be ACTIVE) and the key
// ring for the call only. Thread-safety: the functions may run on any thread while the gateway serves;
// CaptureSink is spdlog's mutex-guarded base sink, written from the logging thread.
#pragma once

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>

#include <samokoder/sdk/storage.hpp>

#include "api/provider_key_crypto.hpp"
#include "config/config.hpp"
#include "plugins/plugin_manager.hpp"
#include "security/aead.hpp"

namespace samokoder::llm::support {

// Every line the loggers it is attached to write, prefixed with the logger's name.
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    const std::lock_guard lock(mutex_);
    return lines_;
  }
  bool saw(std::string_view part) {
    const auto all = lines();
    return std::any_of(all.begin(), all.end(),
                       [&](const std::string& line) { return line.find(part) != std::string::npos; });
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.push_back(std::string(msg.logger_name.data(), msg.logger_name.size()) + ": " +
                     std::string(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

// The storage.sqlite plugin entry, its database in `dir`; SAMOKODER_PLUGIN_DIR is the built plugins'.
inline config::PluginEntry sqlite_storage_entry(const std::filesystem::path& dir) {
  config::PluginEntry storage;
  storage.id = "storage.sqlite";
  storage.file = SAMOKODER_PLUGIN_DIR "/storage_sqlite.so";
  storage.required = true;
  storage.config = {{"path", (dir / "samokoder.db").string()}};
  return storage;
}

template <typename F>
auto storage_call(const plugins::PluginManager& manager, F&& fn) {
  return manager.acquire_storage().call<sdk::Storage>(std::forward<F>(fn));
}

// Creates the user the calls are made for; empty (and the test failed) when storage refused.
inline std::string create_user(const plugins::PluginManager& manager) {
  auto user = storage_call(manager, [](sdk::Storage& s) {
    return s.store<sdk::UserStore>().create_user(
        {.email = "ada@example.com", .password_hash = "x", .is_admin = false, .tier = "free"});
  });
  EXPECT_TRUE(user.ok()) << user.status().to_string();
  return user.ok() ? user->id : std::string();
}

// Seals and stores a user's key as the key API (PUT /api/v1/keys/{provider}) does.
inline void store_user_key(const plugins::PluginManager& manager, const security::KeyRing& ring,
                           const std::string& user_id, std::string_view provider, std::string_view key) {
  auto sealed = api::seal_provider_key(ring, user_id, provider, key);
  ASSERT_TRUE(sealed.ok()) << sealed.status().to_string();
  auto stored = storage_call(
      manager, [&](sdk::Storage& s) { return s.store<sdk::ProviderKeyStore>().put_provider_key(*sealed); });
  ASSERT_TRUE(stored.ok()) << stored.status().to_string();
}

// The user's recorded attempts (up to 100), oldest first.
inline std::vector<sdk::LlmRequest> records_of(const plugins::PluginManager& manager,
                                               const std::string& user_id) {
  auto page = storage_call(manager, [&](sdk::Storage& s) {
    return s.store<sdk::LlmRequestStore>().list_llm_requests(user_id, {100, ""});
  });
  EXPECT_TRUE(page.ok()) << page.status().to_string();
  if (!page.ok()) return {};
  auto items = page->items;
  std::reverse(items.begin(), items.end());
  return items;
}

}  // namespace samokoder::llm::support

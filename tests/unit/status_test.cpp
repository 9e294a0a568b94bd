#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <samokoder/sdk/status.hpp>

namespace samokoder::sdk {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.to_string(), "ok");
}

TEST(StatusTest, FactoriesCarryCodeAndMessage) {
  const Status status = Status::not_found("project 42 does not exist");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(status.to_string(), "not_found: project 42 does not exist");
  EXPECT_EQ(status_code_name(StatusCode::kResourceExhausted), "resource_exhausted");
}

TEST(ResultTest, HoldsAValueOrAFailure) {
  Result<std::string> value = std::string("hello");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, "hello");
  EXPECT_EQ(value->size(), 5u);
  EXPECT_TRUE(value.status().ok());

  Result<std::string> failure = Status::unavailable("database down");
  ASSERT_FALSE(failure.ok());
  EXPECT_EQ(failure.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(failure.value_or("fallback"), "fallback");
  EXPECT_THROW(failure.value(), BadResultAccess);
}

TEST(ResultTest, AnOkStatusWithoutValueBecomesAnInternalError) {
  Result<int> result = Status{};
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInternal);
}

TEST(ResultTest, MoveOnlyValuesMoveOut) {
  Result<std::unique_ptr<int>> result = std::make_unique<int>(7);
  std::unique_ptr<int> taken = std::move(result).value();
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 7);
}

Status fails_then_returns(bool fail, int& reached) {
  SAMOKODER_RETURN_IF_ERROR(fail ? Status::aborted("conflict") : Status{});
  reached = 1;
  return {};
}

TEST(StatusTest, ReturnIfErrorPropagates) {
  int reached = 0;
  EXPECT_EQ(fails_then_returns(true, reached).code(), StatusCode::kAborted);
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(fails_then_returns(false, reached).ok());
  EXPECT_EQ(reached, 1);
}

}  // namespace
}  // namespace samokoder::sdk

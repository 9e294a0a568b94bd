// The wire rules the scripted model server cannot produce on demand: the error shapes and in-stream
// error types of the various compatible servers, and stream chunks as some of them deviate from
// OpenAI's. Plain data in, data out; the plugin's behaviour on a real wire is openai_plugin_test.cpp.
#include "../src/wire.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace samokoder::llm_openai {
namespace {

using ::testing::HasSubstr;

TEST(OpenAiWireTest, InStreamErrorsMapByTheirCodeOrType) {
  const std::vector<std::pair<std::string, sdk::StatusCode>> cases = {
      {R"({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}})",
       sdk::StatusCode::kResourceExhausted},
      {R"({"error": {"message": "no money", "type": "insufficient_quota", "code": null}})",
       sdk::StatusCode::kResourceExhausted},
      {R"({"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}})",
       sdk::StatusCode::kUnauthenticated},
      {R"({"error": {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}})",
       sdk::StatusCode::kInvalidArgument},
      {R"({"error": {"message": "not yours", "type": "permission_error"}})",
       sdk::StatusCode::kPermissionDenied},
      {R"({"error": {"message": "boom", "type": "server_error", "code": null}})",
       sdk::StatusCode::kUnavailable},
      {R"({"error": {"message": "Rate limit exceeded", "code": 429}})", sdk::StatusCode::kResourceExhausted},
      {R"({"object": "error", "message": "model not found", "type": "NotFoundError", "code": 404})",
       sdk::StatusCode::kInvalidArgument},
      {R"({"error": {"message": "something new", "type": "brand_new_error"}})",
       sdk::StatusCode::kUnavailable},
  };
  for (const auto& [body, code] : cases) {
    const sdk::Status status = error_status(0, body);
    EXPECT_EQ(status.code(), code) << body << " -> " << status.to_string();
    EXPECT_THAT(status.message(), HasSubstr("in the stream")) << body;
  }
}

TEST(OpenAiWireTest, HttpErrorsQuoteTheMessageOfEveryServersErrorShape) {
  EXPECT_THAT(error_status(404, R"({"error": "model 'llama9' not found"})").message(),
              HasSubstr("model 'llama9' not found"));  // Ollama, llama.cpp server
  EXPECT_THAT(error_status(422, R"({"detail": "field required"})").message(), HasSubstr("field required"));
  const sdk::Status proxy = error_status(502, "<html>Bad Gateway</html>");
  EXPECT_EQ(proxy.code(), sdk::StatusCode::kUnavailable);
  EXPECT_THAT(proxy.message(), HasSubstr("Bad Gateway"));
  EXPECT_EQ(error_status(413, "").code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(error_status(408, "").code(), sdk::StatusCode::kUnavailable);
}

TEST(OpenAiWireTest, UsageOnAFinishingChunkAndDeepSeekCacheCountsAreRead) {
  StreamDecoder decoder;
  auto step = decoder.on_event(
      R"({"model": "deepseek-chat", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 40, "completion_tokens": 2, "prompt_cache_hit_tokens": 32}})");
  ASSERT_TRUE(step.status.ok()) << step.status.to_string();
  EXPECT_EQ(step.content, "hi");
  EXPECT_TRUE(step.usage_changed);
  EXPECT_TRUE(decoder.finished()) << "a finish_reason completes a stream that omits [DONE]";
  EXPECT_EQ(decoder.usage().prompt_tokens, 40u);
  EXPECT_EQ(decoder.usage().cached_prompt_tokens, 32u);
  EXPECT_EQ(decoder.model(), "deepseek-chat");
}

TEST(OpenAiWireTest, NullUsageAndEmptyDeltasAreNoNews) {
  StreamDecoder decoder;
  auto step = decoder.on_event(
      R"({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}],
          "usage": null})");
  ASSERT_TRUE(step.status.ok());
  EXPECT_FALSE(step.content.has_value());
  EXPECT_FALSE(step.usage_changed);
  EXPECT_FALSE(decoder.finished());
  EXPECT_EQ(decoder.on_event(R"({"choices": "nope"})").status.code(), sdk::StatusCode::kInternal);
  EXPECT_TRUE(decoder.on_event("[DONE]").status.ok());
  EXPECT_TRUE(decoder.finished());
}

TEST(OpenAiWireTest, TheKeyIsScrubbedEverywhereItOccurs) {
  EXPECT_EQ(scrubbed("key sk-abc and again sk-abc.", "sk-abc"), "key *** and again ***.");
  EXPECT_EQ(scrubbed("nothing here", ""), "nothing here");
}

}  // namespace
}  // namespace samokoder::llm_openai

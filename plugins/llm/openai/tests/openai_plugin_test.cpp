// llm.openai as the kernel runs it (tests/support/llm_provider_harness.hpp) against the scripted model
// server answering in the OpenAI Chat Completions format. What every provider must do is the provider
// conformance suite's (tests/support/llm_provider_conformance.hpp), run here with the OpenAI profile;
// this file keeps what only this wire format has: the system prompt as the first message,
// stream_options, and JSON output by response_format and its json_mode variants.
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "llm_provider_conformance.hpp"
#include "model_server.hpp"

namespace samokoder::llm_openai {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testing::ModelReply;
using testing::ProviderConformance;
using testing::ScriptedModelServer;

testing::ProviderProfile openai_profile() {
  return {
      .name = "openai",
      .plugin_id = "llm.openai",
      .plugin_file = SAMOKODER_LLM_OPENAI_PLUGIN,
      .format = testing::WireFormat::kOpenAi,
      .key = "sk-proj-SECRETKEY-0123456789abcdef",
      .base_path = "/v1",
      .completion_path = "/v1/chat/completions",
      .base_url_env = "OPENAI_BASE_URL",
      .overloaded_status = 503,
      .stream_error_type = "server_error",
      .finish_reasons = {{"length", "length"},
                         {"tool_calls", "tool_use"},
                         {"content_filter", "content_filter"}},
      .usage = {.prompt_tokens = 100, .completion_tokens = 7, .cached_prompt_tokens = 60},
      .expected_usage = {.prompt_tokens = 100, .completion_tokens = 7, .cached_prompt_tokens = 60},
      .usage_mapping = "prompt_tokens counts the cached ones; prompt_tokens_details.cached_tokens",
      .invalid_configs = {{{{"stream_usage", "yes"}}, "stream_usage"}, {{{"json_mode", "xml"}}, "json_mode"}},
      .model_owner = "scripted",
      .headers_for =
          [](const std::string& key) {
            return std::map<std::string, std::string>{{"authorization", "Bearer " + key}};
          },
      .expect_request_body =
          [](const json& body) {
            if (body["stream"] == true) {
              EXPECT_EQ(body["stream_options"], json::parse(R"({"include_usage": true})"));
            } else {
              EXPECT_FALSE(body.contains("stream_options")) << "a buffered answer carries its usage anyway";
            }
            EXPECT_EQ(body["messages"], json::parse(R"([{"role": "system", "content": "be brief"},
                                                {"role": "user", "content": "say hello"}])"));
            EXPECT_FALSE(body.contains("response_format"));
          }};
}

INSTANTIATE_TEST_SUITE_P(Conformance, ProviderConformance, ::testing::Values(openai_profile()),
                         testing::profile_name);

class OpenAiPluginTest : public testing::ProviderTest {
 protected:
  OpenAiPluginTest() : ProviderTest(openai_profile()) {}
};

// ---- the request ---------------------------------------------------------------------------------

TEST_F(OpenAiPluginTest, TheSystemPromptComesFirstAndTheConversationKeepsItsOrder) {
  ScriptedModelServer server;
  server.script({streamed({"ok"}), streamed({"ok"})});
  start();
  auto request = request_to(server);
  request.system = "you are a coder";
  request.messages = {{"user", "one"}, {"assistant", "two"}, {"user", "three"}};
  request.temperature.reset();
  ASSERT_TRUE(complete(request, nullptr).ok());
  request.system.clear();
  ASSERT_TRUE(complete(request, nullptr).ok());

  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].body["messages"], json::parse(R"([{"role": "system", "content": "you are a coder"},
                                                      {"role": "user", "content": "one"},
                                                      {"role": "assistant", "content": "two"},
                                                      {"role": "user", "content": "three"}])"));
  EXPECT_FALSE(calls[0].body.contains("temperature")) << "unset: the endpoint's default";
  EXPECT_EQ(calls[1].body["messages"][0]["role"], "user") << "no empty system message";
}

TEST_F(OpenAiPluginTest, StreamUsageOffSendsNoStreamOptionsAndEstimates) {
  ScriptedModelServer server;
  server.script({streamed({"twelve chars"})});
  start({{"stream_usage", false}});
  auto completion = complete(request_to(server), nullptr);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_TRUE(completion->usage.estimated) << "the server sends usage only when asked";
  EXPECT_EQ(completion->usage.completion_tokens, 3u);
  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].body.contains("stream_options"));
}

// ---- JSON output -----------------------------------------------------------------------------------

json project_schema() {
  return json::parse(
      R"({"type": "object", "properties": {"name": {"type": "string"}, "files": {"type": "integer"}},
                         "required": ["name", "files"], "additionalProperties": false})");
}

TEST_F(OpenAiPluginTest, JsonOutputSendsResponseFormatWithTheStrictSchema) {
  ScriptedModelServer server;
  server.script({streamed({"{\"name\": ", "\"todo\", \"files\"", ": 3}"})});
  start();
  testing::CompletionRecorder recorder;
  auto request = request_to(server);
  request.json_output = sdk::JsonOutput{"project_spec", project_schema()};
  auto completion = complete(request, &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(json::parse(completion->content), json::parse(R"({"name": "todo", "files": 3})"));
  EXPECT_EQ(recorder.text(), completion->content);

  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  const json& body = calls[0].body;
  ASSERT_TRUE(body.contains("response_format"));
  EXPECT_EQ(
      body["response_format"],
      (json{{"type", "json_schema"},
            {"json_schema", {{"name", "project_spec"}, {"schema", project_schema()}, {"strict", true}}}}));
  EXPECT_EQ(body["messages"][0], (json{{"role", "system"}, {"content", "be brief"}}))
      << "the schema travels in response_format only";
}

TEST_F(OpenAiPluginTest, JsonModePromptPutsTheSchemaIntoTheSystemPromptInstead) {
  ScriptedModelServer server;
  server.script({streamed({"{}"}), streamed({"{}"})});
  start({{"json_mode", "prompt"}});
  auto request = request_to(server);
  request.json_output = sdk::JsonOutput{"project_spec", project_schema()};
  ASSERT_TRUE(complete(request, nullptr).ok());
  request.system.clear();
  ASSERT_TRUE(complete(request, nullptr).ok());

  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 2u);
  for (const auto& call : calls) {
    EXPECT_FALSE(call.body.contains("response_format"));
    ASSERT_EQ(call.body["messages"][0]["role"], "system");
    EXPECT_THAT(call.body["messages"][0]["content"].get<std::string>(), HasSubstr(project_schema().dump()));
  }
  EXPECT_THAT(calls[0].body["messages"][0]["content"].get<std::string>(), ::testing::StartsWith("be brief"));
}

TEST_F(OpenAiPluginTest, JsonModeJsonObjectAsksForAnObjectAndNamesTheSchemaInThePrompt) {
  ScriptedModelServer server;
  server.script({streamed({"{}"})});
  start({{"json_mode", "json_object"}});
  auto request = request_to(server);
  request.json_output = sdk::JsonOutput{"project_spec", project_schema()};
  ASSERT_TRUE(complete(request, nullptr).ok());
  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].body["response_format"], json::parse(R"({"type": "json_object"})"));
  EXPECT_THAT(calls[0].body["messages"][0]["content"].get<std::string>(), HasSubstr(project_schema().dump()));
}

}  // namespace
}  // namespace samokoder::llm_openai

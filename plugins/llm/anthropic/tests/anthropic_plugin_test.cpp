// llm.anthropic as the kernel runs it (tests/support/llm_provider_harness.hpp) against the scripted
// model server answering in the Anthropic Messages format. What every provider must do is the provider
// conformance suite's (tests/support/llm_provider_conformance.hpp), run here with the Anthropic profile
// (HTTP 529 as overloaded, usage in message_start with both cache counts, pings as keep-alives); this
// file keeps what only this wire format has: cache_control breakpoints and JSON output by a forced tool.
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "llm_provider_conformance.hpp"
#include "model_server.hpp"

namespace samokoder::llm_anthropic {
namespace {

using nlohmann::json;
using testing::ModelReply;
using testing::ProviderConformance;
using testing::ScriptedModelServer;

testing::ProviderProfile anthropic_profile() {
  // HTTP 529 is Anthropic's "overloaded"; message_start reports the input's usage before any content,
  // with the cache reads and writes apart; the scripted "length" goes out as stop_reason max_tokens.
  return {.name = "anthropic",
          .plugin_id = "llm.anthropic",
          .plugin_file = SAMOKODER_LLM_ANTHROPIC_PLUGIN,
          .format = testing::WireFormat::kAnthropic,
          .key = "sk-ant-api03-SECRETKEY-0123456789",
          .base_path = "",
          .completion_path = "/v1/messages",
          .base_url_env = "ANTHROPIC_BASE_URL",
          .overloaded_status = 529,
          .stream_error_type = "overloaded_error",
          .finish_reasons = {{"length", "length"}},
          .usage = {.prompt_tokens = 100,
                    .completion_tokens = 7,
                    .cached_prompt_tokens = 60,
                    .cache_write_tokens = 30},
          .expected_usage = {.prompt_tokens = 100,
                             .completion_tokens = 7,
                             .cached_prompt_tokens = 60,
                             .cache_write_tokens = 30},
          .usage_mapping = "prompt_tokens is input_tokens plus both cache counts",
          .usage_before_content = true,
          .invalid_configs = {{{{"cache_system_prompt_min_chars", 1.5}}, "cache_system_prompt_min_chars"}},
          .model_owner = "",  // Anthropic's model list names no owner
          .headers_for =
              [](const std::string& key) {
                return std::map<std::string, std::string>{{"x-api-key", key},
                                                          {"anthropic-version", "2023-06-01"}};
              },
          .expect_request_body =
              [](const json& body) {
                EXPECT_EQ(body["system"], json::parse(R"([{"type": "text", "text": "be brief"}])"));
                EXPECT_EQ(
                    body["messages"],
                    json::parse(R"([{"role": "user", "content": [{"type": "text", "text": "say hello"}]}])"));
                EXPECT_FALSE(body.contains("tools"));
              }};
}

INSTANTIATE_TEST_SUITE_P(Conformance, ProviderConformance, ::testing::Values(anthropic_profile()),
                         testing::profile_name);

class AnthropicPluginTest : public testing::ProviderTest {
 protected:
  AnthropicPluginTest() : ProviderTest(anthropic_profile()) {}
};

// ---- prompt caching --------------------------------------------------------------------------------

std::vector<std::string> cached_texts(const json& body) {
  std::vector<std::string> texts;
  if (body.contains("system")) {
    for (const auto& block : body["system"])
      if (block.contains("cache_control")) texts.push_back("system");
  }
  for (const auto& message : body["messages"]) {
    for (const auto& block : message["content"]) {
      if (!block.contains("cache_control")) continue;
      EXPECT_EQ(block["cache_control"], json::parse(R"({"type": "ephemeral"})"));
      texts.push_back(block["text"]);
    }
  }
  return texts;
}

TEST_F(AnthropicPluginTest, CacheControlMarksTheLongSystemPromptAndTheLatestPrefixesAtMostFour) {
  ScriptedModelServer server;
  server.script({streamed({"1"}), streamed({"2"}), streamed({"3"})});
  start({{"cache_system_prompt_min_chars", 20}});
  auto request = request_to(server);
  request.system = std::string(20, 's');
  request.messages.clear();
  for (int i = 0; i < 6; ++i)
    request.messages.push_back({i % 2 == 0 ? "user" : "assistant", "m" + std::to_string(i), i != 0});
  ASSERT_TRUE(complete(request, nullptr).ok());

  request.system = std::string(19, 's');  // under the threshold: all four go to messages
  ASSERT_TRUE(complete(request, nullptr).ok());

  request.messages = {{"user", "spec", true}, {"assistant", "ok", false}, {"user", "go", false}};
  request.system.clear();
  ASSERT_TRUE(complete(request, nullptr).ok());

  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(cached_texts(calls[0].body), (std::vector<std::string>{"system", "m3", "m4", "m5"}));
  EXPECT_EQ(cached_texts(calls[1].body), (std::vector<std::string>{"m2", "m3", "m4", "m5"}));
  EXPECT_EQ(cached_texts(calls[2].body), (std::vector<std::string>{"spec"}));
  EXPECT_FALSE(calls[2].body.contains("system"));
}

// ---- JSON output by a forced tool ------------------------------------------------------------------

TEST_F(AnthropicPluginTest, JsonOutputForcesAToolAndItsInputIsTheContent) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"{\"name\": ", "\"todo\", \"files\"", ": 3}"});
  reply.tool_json = true;
  server.script({reply});
  start();
  testing::CompletionRecorder recorder;
  auto request = request_to(server);
  const json schema = json::parse(
      R"({"type": "object", "properties": {"name": {"type": "string"}, "files": {"type": "integer"}},
          "required": ["name", "files"]})");
  request.json_output = sdk::JsonOutput{"project_spec", schema};
  auto completion = complete(request, &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(json::parse(completion->content), json::parse(R"({"name": "todo", "files": 3})"));
  EXPECT_EQ(recorder.text(), completion->content);
  EXPECT_EQ(completion->finish_reason, "stop") << "the forced tool is the normal end";

  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  const json& body = calls[0].body;
  ASSERT_TRUE(body.contains("tools"));
  ASSERT_EQ(body["tools"].size(), 1u);
  EXPECT_EQ(body["tools"][0]["name"], "project_spec");
  EXPECT_EQ(body["tools"][0]["input_schema"], schema);
  EXPECT_EQ(body["tool_choice"], json::parse(R"({"type": "tool", "name": "project_spec"})"));
}

TEST_F(AnthropicPluginTest, ABufferedForcedToolAnswerIsTheContent) {
  ScriptedModelServer server;
  ModelReply tool = streamed({"{\"ok\":", "true}"});
  tool.tool_json = true;
  server.script({tool});
  start();
  auto request = request_to(server);
  request.stream = false;
  request.json_output = sdk::JsonOutput{"verdict", json::parse(R"({"type": "object"})")};
  auto json_completion = complete(request, nullptr);
  ASSERT_TRUE(json_completion.ok()) << json_completion.status().to_string();
  EXPECT_EQ(json::parse(json_completion->content), json::parse(R"({"ok": true})"));
  EXPECT_EQ(json_completion->finish_reason, "stop");
  EXPECT_EQ(server.calls()[0].body["stream"], false);
}

}  // namespace
}  // namespace samokoder::llm_anthropic

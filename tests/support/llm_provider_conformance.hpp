// The provider conformance suite: what every LLM provider plugin must do whatever its wire format,
// checked against the scripted model server (streaming in pieces and in bytes, usage and its estimate,
// failures inside the stream and before it, the HTTP error mapping, the three timeouts, cancellation,
// a buffered answer, the base URL's sources, config errors, a key that never leaks, concurrency, the
// model list). The tests live in llm_provider_conformance.cpp; a provider joins by instantiating
// ProviderConformance with its ProviderProfile in its own test program:
//
//   using testing::ProviderConformance;
//   INSTANTIATE_TEST_SUITE_P(Conformance, ProviderConformance, ::testing::Values(openai_profile()),
//                            testing::profile_name);
//
// which names the tests "Conformance/ProviderConformance.<Test>/<profile name>". What only one wire
// format has (OpenAI's response_format, Anthropic's cache_control) stays in that plugin's own tests,
// which derive their fixture from ProviderTest to get the same helpers. See plugins/llm/openai/tests
// for the model.
//
// Ownership: a ProviderTest owns its LlmProviderHarness (and through it the loaded plugin) for one
// test; a profile is a plain value. Thread-safety: the helpers are for the test's thread, except
// complete() and list_models(), which may run from several threads at once.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <samokoder/sdk/llm.hpp>

#include "llm_provider_harness.hpp"
#include "model_server.hpp"

namespace samokoder::testing {

// What the suite has to know of one provider: where its plugin is, how its API is addressed and
// authenticated, and where the API's rules differ (the overloaded status, the usage counts).
struct ProviderProfile {
  std::string name;  // [A-Za-z0-9_]: the gtest parameter name ("openai")
  std::string plugin_id;
  std::filesystem::path plugin_file;
  WireFormat format = WireFormat::kOpenAi;
  std::string key;  // looks like a real key of the API, so scrubbing is tested on its shape

  // The base URL is server.url(base_path) (OpenAI clients take ".../v1", Anthropic's the origin);
  // a completion POSTs to completion_path; without a configured URL, base_url_env names the default.
  std::string base_path;
  std::string completion_path;
  std::string base_url_env;

  // The HTTP status the API answers when it is overloaded: Unavailable, with Retry-After honoured.
  unsigned overloaded_status = 503;
  // The error type the scripted server names for an error event inside a stream of this format.
  std::string stream_error_type;
  // Finish reasons as the scripted server is told them (OpenAI's words; it maps them to the format's)
  // and as the provider must report them.
  std::vector<std::pair<std::string, std::string>> finish_reasons;

  // The usage the scripted server reports with an answer, and what the provider must make of it.
  ScriptedUsage usage;
  sdk::TokenUsage expected_usage;
  std::string usage_mapping;  // how the counts map, said when they do not
  // True when the format reports the prompt's usage before any content (Anthropic's message_start):
  // a stream that breaks then still carries the endpoint's count; otherwise the spent tokens are an
  // estimate from the text received.
  bool usage_before_content = false;

  // Invalid values of the config keys only this provider has, each with what its complaint names.
  std::vector<std::pair<nlohmann::json, std::string>> invalid_configs;
  std::string model_owner;  // ModelInfo::owned_by of a scripted model list entry

  // The headers every request carries for `key`: its authentication and whatever the API demands.
  std::function<std::map<std::string, std::string>(const std::string& key)> headers_for;
  // How the request of ProviderTest::request_to() ("be brief", "say hello") looks in the format,
  // streamed or buffered (body["stream"] says which), with what the format adds around it.
  std::function<void(const nlohmann::json& body)> expect_request_body;
};

// gtest prints a test parameter with this: the profile's name instead of its bytes.
inline void PrintTo(const ProviderProfile& profile, std::ostream* os) {
  *os << profile.name;
}
inline std::string profile_name(const ::testing::TestParamInfo<ProviderProfile>& info) {
  return info.param.name;
}

// A test of one provider: a fresh harness per test and helpers that speak in the profile's terms.
class ProviderTest : public ::testing::Test {
 public:
  static constexpr auto kPatience = std::chrono::seconds(20);  // how long a wait may poll
  static constexpr const char* kModel = "model-under-test";    // the model every request asks for
  static constexpr const char* kAnsweredModel = "model-answered";

 protected:
  explicit ProviderTest(ProviderProfile profile)
      : profile_(std::move(profile)),
        harness_(std::make_unique<LlmProviderHarness>(profile_.plugin_id, profile_.plugin_file)) {}

  const ProviderProfile& profile() const noexcept { return profile_; }
  LlmProviderHarness& harness() noexcept { return *harness_; }
  const TestPki& pki() const noexcept { return harness_->pki(); }

  // Loads the plugin with `config`; the load's outcome is for the test to check.
  sdk::Status load(nlohmann::json config = nlohmann::json::object()) {
    return harness_->load(std::move(config));
  }
  // load() with the profile's base URL environment variable set to `value` while the plugin reads it.
  sdk::Status load_with_base_url_env(const std::string& value,
                                     nlohmann::json config = nlohmann::json::object());
  // Loads the plugin with `config` and fails the test unless it is active.
  void start(nlohmann::json config = nlohmann::json::object()) {
    ASSERT_TRUE(harness_->start(std::move(config)));
  }

  std::string base_url(const ScriptedModelServer& server) const { return server.url(profile_.base_path); }
  // A streamed request to `server` with the profile's key: system "be brief", user "say hello".
  sdk::CompletionRequest request_to(const ScriptedModelServer& server) const;

  sdk::Result<sdk::Completion> complete(const sdk::CompletionRequest& request,
                                        sdk::CompletionObserver* observer,
                                        sdk::CancelToken cancel = sdk::never_cancelled()) {
    return harness_->complete(request, observer, std::move(cancel));
  }
  sdk::Result<std::vector<sdk::ModelInfo>> list_models(const std::string& base_url, const std::string& key) {
    return harness_->list_models(base_url, key);
  }

  // One call of request_to(), changed by `edit`, to a fresh server whose script is `reply`, with the
  // plugin started on `config`: what came back, what the observer saw, and the server, still open for
  // a look at its calls and connections.
  struct Call {
    std::unique_ptr<ScriptedModelServer> server;
    std::unique_ptr<CompletionRecorder> recorder;
    sdk::Result<sdk::Completion> completion;
  };
  Call call_answered_by(ModelReply reply, const std::function<void(sdk::CompletionRequest&)>& edit = {},
                        nlohmann::json config = nlohmann::json::object());
  // An HTTP error answer quoting `message`, with Retry-After when `retry_after_seconds` is given.
  static ModelReply http_error(unsigned status, std::string message,
                               std::optional<int> retry_after_seconds = std::nullopt);

  // The reply the scripted server streams: these pieces of text, the model kAnsweredModel and the
  // profile's usage.
  ModelReply streamed(std::vector<std::string> deltas) const;
  // `usage` is the profile's expected usage, as the endpoint reported it (not estimated).
  void expect_full_usage(const sdk::TokenUsage& usage) const;
  // Every header of profile().headers_for(key) is on `call`.
  void expect_headers(const ModelCall& call, const std::string& key) const;

 private:
  ProviderProfile profile_;
  std::unique_ptr<LlmProviderHarness> harness_;
};

// The conformance suite's fixture: a ProviderTest of the instantiation's profile.
class ProviderConformance : public ProviderTest, public ::testing::WithParamInterface<ProviderProfile> {
 protected:
  ProviderConformance() : ProviderTest(GetParam()) {}
};

}  // namespace samokoder::testing

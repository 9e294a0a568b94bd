// llm.openai: the LlmProvider for OpenAI-compatible Chat Completions endpoints (README.md beside src/
// has the config, JSON output modes and the status mapping).
#include <cstdlib>
#include <string_view>
#include <utility>

#include <samokoder/llm_common/provider_kit.hpp>
#include <samokoder/llm_common/streamed_call.hpp>
#include <samokoder/sdk/llm.hpp>
#include <samokoder/sdk/redact.hpp>

#include "config.hpp"
#include "wire.hpp"

namespace samokoder::llm_openai {
namespace {

using nlohmann::json;

using llm_common::scrubbed_status;

class OpenAiProvider final : public sdk::LlmProvider {
 public:
  sdk::Status init(sdk::HostServices& host) override {
    host_ = &host;
    auto config = parse_config(host.config(), std::getenv("OPENAI_BASE_URL"));
    if (!config.ok()) return config.status();
    config_ = std::move(*config);
    host.log(sdk::LogLevel::kInfo,
             "openai provider ready, endpoint " + sdk::redact_credentials(config_.base_url));
    return {};
  }

  std::string_view provider() const noexcept override { return "openai"; }

  sdk::Result<sdk::Completion> complete(const sdk::CompletionRequest& request,
                                        sdk::CompletionObserver* observer, sdk::CancelToken cancel) override {
    return llm_common::completion_result(*host_, request, run(request, observer, cancel));
  }

  sdk::Result<std::vector<sdk::ModelInfo>> list_models(const sdk::ModelListRequest& request,
                                                       sdk::CancelToken cancel) override {
    auto result = fetch_models(request, cancel);
    if (result.ok()) return result;
    return scrubbed_status(result.status(), request.api_key);
  }

 private:
  sdk::Result<std::string> base_url_of(const std::string& requested) const {
    if (requested.empty()) return config_.base_url;
    return llm_common::normalized_base_url(requested, "base_url");
  }

  static std::vector<sdk::HttpHeader> headers_for(const std::string& api_key) {
    std::vector<sdk::HttpHeader> headers;
    // Local servers (Ollama, llama.cpp, LM Studio) need no key; an empty Bearer would be refused by some.
    if (!api_key.empty()) headers.push_back({"Authorization", "Bearer " + api_key, /*secret=*/true});
    return headers;
  }

  sdk::Result<sdk::Completion> run(const sdk::CompletionRequest& request, sdk::CompletionObserver* observer,
                                   sdk::CancelToken cancel) {
    auto base = base_url_of(request.base_url);
    if (!base.ok()) return base.status();
    sdk::HttpRequest http;
    http.method = "POST";
    http.url = *base + "/chat/completions";
    http.headers = headers_for(request.api_key);
    http.headers.push_back({"Content-Type", "application/json", false});
    if (request.stream) http.headers.push_back({"Accept", "text/event-stream", false});
    http.body = request_body(request, config_).dump(-1, ' ', false, json::error_handler_t::replace);

    StreamDecoder decoder;
    llm_common::DecoderReader reader(
        decoder, [](StreamDecoder& d, const llm_common::SseEvent& event) { return d.on_event(event.data); });
    llm_common::CompletionWire wire;
    wire.provider = "openai";
    wire.unfinished_stream = "openai's stream ended without a finish_reason or [DONE]";
    // Usage comes last in an OpenAI stream, if at all.
    wire.partial_usage = llm_common::PartialUsage::kEstimateWhenUnknown;
    wire.parse_buffered = [](std::string_view body, bool& usage_reported) {
      return parse_completion(body, usage_reported);
    };
    wire.error_status = error_status;
    return llm_common::run_streamed_call(*host_, request, observer, cancel, config_.timeouts, std::move(http),
                                         reader, wire);
  }

  sdk::Result<std::vector<sdk::ModelInfo>> fetch_models(const sdk::ModelListRequest& request,
                                                        sdk::CancelToken cancel) {
    auto base = base_url_of(request.base_url);
    if (!base.ok()) return base.status();
    llm_common::ModelListWire wire;
    wire.provider = "openai";
    wire.not_listed = "this OpenAI-compatible endpoint has no model list (GET /models answered 404)";
    wire.error_status = error_status;
    auto body = llm_common::fetch_model_page(*host_, request, cancel, config_.timeouts, *base + "/models",
                                             headers_for(request.api_key), wire);
    if (!body.ok()) return body.status();
    return parse_models(*body);
  }

  sdk::HostServices* host_ = nullptr;
  ProviderConfig config_;
};

}  // namespace
}  // namespace samokoder::llm_openai

SAMOKODER_PLUGIN(samokoder::llm_openai::OpenAiProvider, "llm.openai", "1.0.0",
                 "OpenAI-compatible Chat Completions: streaming, usage with cached tokens, JSON output")

// llm.anthropic: the LlmProvider for the Anthropic Messages API (README.md beside src/ has the config,
// caching rules, JSON output by a forced tool and the status mapping).
#include <cctype>
#include <cstdlib>
#include <string_view>
#include <utility>

#include <samokoder/llm_common/provider_kit.hpp>
#include <samokoder/llm_common/streamed_call.hpp>
#include <samokoder/sdk/llm.hpp>
#include <samokoder/sdk/redact.hpp>

#include "config.hpp"
#include "wire.hpp"

namespace samokoder::llm_anthropic {
namespace {

using nlohmann::json;

constexpr int kMaxModelPages = 100;

using llm_common::scrubbed_status;

class AnthropicProvider final : public sdk::LlmProvider {
 public:
  sdk::Status init(sdk::HostServices& host) override {
    host_ = &host;
    auto config = parse_config(host.config(), std::getenv("ANTHROPIC_BASE_URL"));
    if (!config.ok()) return config.status();
    config_ = std::move(*config);
    host.log(sdk::LogLevel::kInfo,
             "anthropic provider ready, endpoint " + sdk::redact_credentials(config_.base_url));
    return {};
  }

  std::string_view provider() const noexcept override { return "anthropic"; }

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

  std::vector<sdk::HttpHeader> headers_for(const std::string& api_key) const {
    return {{"x-api-key", api_key, /*secret=*/true},
            {"anthropic-version", std::string(kApiVersion), false},
            {"content-type", "application/json", false}};
  }

  sdk::Result<sdk::Completion> run(const sdk::CompletionRequest& request, sdk::CompletionObserver* observer,
                                   sdk::CancelToken cancel) {
    auto base = base_url_of(request.base_url);
    if (!base.ok()) return base.status();
    sdk::HttpRequest http;
    http.method = "POST";
    http.url = *base + "/v1/messages";
    http.headers = headers_for(request.api_key);
    if (request.stream) http.headers.push_back({"accept", "text/event-stream", false});
    http.body = request_body(request, config_.cache_system_prompt_min_chars)
                    .dump(-1, ' ', false, json::error_handler_t::replace);

    StreamDecoder decoder(request);
    llm_common::DecoderReader reader(decoder, [](StreamDecoder& d, const llm_common::SseEvent& event) {
      return d.on_event(event.event, event.data);
    });
    llm_common::CompletionWire wire;
    wire.provider = "anthropic";
    wire.unfinished_stream = "anthropic's stream ended before message_stop";
    // output_tokens arrives with message_start and is updated by message_delta near the end, so a cut
    // stream's count stops short of the text that did arrive.
    wire.partial_usage = llm_common::PartialUsage::kAtLeastReceived;
    wire.parse_buffered = [&request](std::string_view body, bool& usage_reported) {
      return parse_message(body, request, usage_reported);
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
    wire.provider = "anthropic";
    wire.not_listed = "this Anthropic endpoint has no model list (GET /v1/models answered 404)";
    wire.error_status = error_status;
    std::vector<sdk::ModelInfo> models;
    std::string after;
    for (int page = 0; page < kMaxModelPages; ++page) {
      std::string url = *base + "/v1/models?limit=1000";
      if (!after.empty()) url += "&after_id=" + after;
      auto body = llm_common::fetch_model_page(*host_, request, cancel, config_.timeouts, std::move(url),
                                               headers_for(request.api_key), wire);
      if (!body.ok()) return body.status();
      const json list = json::parse(*body, nullptr, /*allow_exceptions=*/false);
      if (!list.is_object() || !list.contains("data") || !list["data"].is_array())
        return sdk::Status::internal("anthropic's model list is not an object with a data array");
      for (const json& entry : list["data"]) {
        if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_string()) continue;
        models.push_back({entry["id"].get<std::string>(), entry.value("owned_by", "")});
      }
      const json& last = list.value("last_id", json());
      if (!list.value("has_more", false) || !last.is_string() || last.get<std::string>().empty())
        return models;
      after = percent_encoded(last.get<std::string>());
    }
    return models;
  }

  static std::string percent_encoded(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : text) {
      const auto byte = static_cast<unsigned char>(c);
      if (std::isalnum(byte) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
        out.push_back(c);
      } else {
        out.push_back('%');
        out.push_back(kHex[byte >> 4U]);
        out.push_back(kHex[byte & 0x0FU]);
      }
    }
    return out;
  }

  sdk::HostServices* host_ = nullptr;
  ProviderConfig config_;
};

}  // namespace
}  // namespace samokoder::llm_anthropic

SAMOKODER_PLUGIN(samokoder::llm_anthropic::AnthropicProvider, "llm.anthropic", "1.0.0",
                 "Anthropic Messages API: streaming, prompt caching, JSON output by a forced tool")

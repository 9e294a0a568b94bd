// llm.openai: the LlmProvider for OpenAI-compatible Chat Completions endpoints (README.md beside src/
// has the config, JSON output modes and the status mapping).
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <optional>

#include <samokoder/llm_common/provider_kit.hpp>
#include <samokoder/llm_common/retry_after.hpp>
#include <samokoder/llm_common/sse.hpp>
#include <samokoder/sdk/llm.hpp>
#include <samokoder/sdk/redact.hpp>

#include "config.hpp"
#include "wire.hpp"

namespace samokoder::llm_openai {
namespace {

using nlohmann::json;

// An error body is a few hundred bytes; past this it is not the API talking, and reading on is waste.
constexpr std::size_t kMaxErrorBodyBytes = 64 * 1024;

using llm_common::CallShared;
using llm_common::is_json_content_type;
using llm_common::or_default;
using llm_common::retryable_http_status;
using llm_common::TimerGuard;

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
    auto result = run(request, observer, cancel);
    if (result.ok()) return result;
    const sdk::Status failed(result.status().code(), scrubbed(result.status().message(), request.api_key));
    host_->log(sdk::LogLevel::kDebug,
               "completion with model " + request.model + " failed: " + failed.to_string());
    return failed;
  }

  sdk::Result<std::vector<sdk::ModelInfo>> list_models(const sdk::ModelListRequest& request,
                                                       sdk::CancelToken cancel) override {
    auto result = fetch_models(request, cancel);
    if (result.ok()) return result;
    return sdk::Status(result.status().code(), scrubbed(result.status().message(), request.api_key));
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
    const sdk::LlmTimeouts timeouts{or_default(request.timeouts.connect, config_.timeouts.connect),
                                    or_default(request.timeouts.first_token, config_.timeouts.first_token),
                                    or_default(request.timeouts.idle, config_.timeouts.idle),
                                    or_default(request.timeouts.total, config_.timeouts.total)};

    auto shared = std::make_shared<CallShared>();
    const sdk::OnCancel link(cancel, [shared] { shared->source.request_stop(); });
    std::optional<sdk::Scheduler::TimerId> timer;
    if (timeouts.first_token.count() > 0) {
      // Without a timer (a full task queue) the HTTP first_byte timeout below still bounds the wait
      // for the headers.
      auto armed = host_->scheduler().run_after(timeouts.first_token,
                                                [shared](sdk::CancelToken) { shared->expire(); });
      if (armed.ok()) timer = *armed;
    }
    const TimerGuard guard(host_->scheduler(), timer);

    sdk::HttpRequest http;
    http.method = "POST";
    http.url = *base + "/chat/completions";
    http.headers = headers_for(request.api_key);
    http.headers.push_back({"Content-Type", "application/json", false});
    if (request.stream) http.headers.push_back({"Accept", "text/event-stream", false});
    http.body = request_body(request, config_).dump(-1, ' ', false, json::error_handler_t::replace);
    http.timeouts = {timeouts.connect, timeouts.first_token, timeouts.idle, timeouts.total};

    // Filled on the HTTP service's threads while send() blocks this one; read after it returned.
    sdk::HttpResponseHead head;
    bool streamed = false;
    std::string buffered;
    llm_common::SseParser parser;
    StreamDecoder decoder;
    sdk::Status stream_failure;
    bool caller_stopped = false;
    std::optional<sdk::TokenUsage> reported;
    auto report_usage = [&](const sdk::TokenUsage& usage) {
      if (observer == nullptr) return;
      if (reported && reported->prompt_tokens == usage.prompt_tokens &&
          reported->completion_tokens == usage.completion_tokens &&
          reported->cached_prompt_tokens == usage.cached_prompt_tokens &&
          reported->estimated == usage.estimated)
        return;
      reported = usage;
      observer->on_usage(usage);
    };

    http.on_headers = [&](const sdk::HttpResponseHead& received) {
      head = received;
      streamed = received.status == 200 && request.stream && !is_json_content_type(received.headers);
      // An error or a buffered answer is the whole answer: the first-token wait is over.
      if (!streamed) return shared->answered();
      return true;
    };
    http.on_body = [&](std::string_view piece) {
      if (!streamed) {
        buffered.append(piece);
        return head.status == 200 || buffered.size() < kMaxErrorBodyBytes;
      }
      const auto fed = parser.feed(piece, [&](const llm_common::SseEvent& event) {
        auto step = decoder.on_event(event.data);
        if (!step.status.ok()) {
          stream_failure = std::move(step.status);
          return false;
        }
        if (step.usage_changed) report_usage(decoder.usage());
        if (step.content) {
          if (!shared->answered()) return false;
          if (observer != nullptr && !observer->on_delta(*step.content)) {
            caller_stopped = true;
            return false;
          }
        }
        return true;
      });
      if (fed == llm_common::SseParser::Feed::kLineTooLong)
        stream_failure = sdk::Status::internal("openai sent an event line past the parser's limit");
      return fed == llm_common::SseParser::Feed::kMore;
    };

    auto response = host_->http().send(http, shared->source.get_token());

    // Tokens were spent on what arrived even when the call fails: account them, estimated when the
    // answer's own usage never came (it comes last in an OpenAI stream).
    auto partial_usage = [&] {
      sdk::TokenUsage usage = decoder.usage();
      if (!decoder.usage_known()) {
        if (decoder.content().empty()) return;
        usage.prompt_tokens = estimated_tokens(prompt_chars(request));
        usage.completion_tokens = estimated_tokens(decoder.content().size());
        usage.estimated = true;
      }
      report_usage(usage);
    };

    // Settles the race with a timer still due: from here on it finds the call answered. A stream that
    // completed without any content (an empty answer) is no timeout.
    const bool expired = !shared->answered() && !(response.ok() && streamed && decoder.finished());
    if (expired || !response.ok()) {
      partial_usage();
      // The caller's stop wins over a timer that fired after it: the caller gave up first.
      if (cancel.stop_requested())
        return sdk::Status::cancelled("the completion was cancelled by its caller");
      if (expired)
        return sdk::Status::deadline_exceeded("first_token timeout: openai sent no content within " +
                                              std::to_string(timeouts.first_token.count()) + " ms");
      const auto& status = response.status();
      if (status.code() == sdk::StatusCode::kDeadlineExceeded &&
          status.message().find("first_byte") != std::string::npos)
        return sdk::Status::deadline_exceeded("first_token timeout: openai sent no answer within " +
                                              std::to_string(timeouts.first_token.count()) + " ms (" +
                                              status.message() + ")");
      return sdk::Status(status.code(), "openai request failed: " + status.message());
    }
    if (head.status != 200) {
      if (observer != nullptr && retryable_http_status(head.status)) {
        if (auto delay = llm_common::retry_after_of(head.headers, host_->now()))
          observer->on_retry_after(*delay);
      }
      return error_status(head.status, buffered);
    }
    if (!streamed) return buffered_completion(request, buffered, observer, report_usage);
    if (!stream_failure.ok()) return partial_usage(), stream_failure;

    sdk::Completion completion;
    completion.content = decoder.content();
    completion.model = decoder.model().empty() ? request.model : decoder.model();
    completion.usage = decoder.usage();
    if (caller_stopped) {
      completion.finish_reason = "stopped";
      partial_usage();
      if (reported) completion.usage = *reported;
      return completion;
    }
    if (!decoder.finished())
      return partial_usage(),
             sdk::Status::unavailable("openai's stream ended without a finish_reason or [DONE]");
    completion.finish_reason = decoder.finish_reason();
    if (!decoder.usage_known()) {
      completion.usage.prompt_tokens = estimated_tokens(prompt_chars(request));
      completion.usage.completion_tokens = estimated_tokens(completion.content.size());
      completion.usage.estimated = true;
    }
    report_usage(completion.usage);
    return completion;
  }

  template <typename ReportUsage>
  static sdk::Result<sdk::Completion> buffered_completion(const sdk::CompletionRequest& request,
                                                          const std::string& body,
                                                          sdk::CompletionObserver* observer,
                                                          ReportUsage& report_usage) {
    bool usage_reported = false;
    auto completion = parse_completion(body, usage_reported);
    if (!completion.ok()) return completion;
    if (completion->model.empty()) completion->model = request.model;
    if (!usage_reported) {
      completion->usage.prompt_tokens = estimated_tokens(prompt_chars(request));
      completion->usage.completion_tokens = estimated_tokens(completion->content.size());
      completion->usage.estimated = true;
    }
    report_usage(completion->usage);
    if (observer != nullptr && !completion->content.empty() && !observer->on_delta(completion->content))
      completion->finish_reason = "stopped";
    return completion;
  }

  sdk::Result<std::vector<sdk::ModelInfo>> fetch_models(const sdk::ModelListRequest& request,
                                                        sdk::CancelToken cancel) {
    auto base = base_url_of(request.base_url);
    if (!base.ok()) return base.status();
    sdk::HttpRequest http;
    http.url = *base + "/models";
    http.headers = headers_for(request.api_key);
    http.timeouts = {or_default(request.timeouts.connect, config_.timeouts.connect),
                     request.timeouts.first_token, or_default(request.timeouts.idle, config_.timeouts.idle),
                     or_default(request.timeouts.total, config_.timeouts.total)};
    auto response = host_->http().send(http, cancel);
    if (!response.ok()) {
      if (cancel.stop_requested())
        return sdk::Status::cancelled("listing models was cancelled by its caller");
      return sdk::Status(response.status().code(), "openai request failed: " + response.status().message());
    }
    if (response->status == 404)
      return sdk::Status::unimplemented(
          "this OpenAI-compatible endpoint has no model list (GET /models answered 404)");
    if (response->status != 200) return error_status(response->status, response->body);
    return parse_models(response->body);
  }

  sdk::HostServices* host_ = nullptr;
  ProviderConfig config_;
};

}  // namespace
}  // namespace samokoder::llm_openai

SAMOKODER_PLUGIN(samokoder::llm_openai::OpenAiProvider, "llm.openai", "1.0.0",
                 "OpenAI-compatible Chat Completions: streaming, usage with cached tokens, JSON output")

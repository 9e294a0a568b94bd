#include "samokoder/llm_common/streamed_call.hpp"

#include <memory>

#include <samokoder/llm_common/provider_kit.hpp>
#include <samokoder/llm_common/retry_after.hpp>

namespace samokoder::llm_common {
namespace {

// An error body is a few hundred bytes; past this it is not the API talking, and reading on is waste.
constexpr std::size_t kMaxErrorBodyBytes = 64 * 1024;

bool same_usage(const sdk::TokenUsage& a, const sdk::TokenUsage& b) {
  return a.prompt_tokens == b.prompt_tokens && a.completion_tokens == b.completion_tokens &&
         a.cached_prompt_tokens == b.cached_prompt_tokens && a.cache_write_tokens == b.cache_write_tokens &&
         a.estimated == b.estimated;
}

void estimate_usage(const sdk::CompletionRequest& request, std::size_t content_chars,
                    sdk::TokenUsage& usage) {
  usage.prompt_tokens = estimated_tokens(prompt_chars(request));
  usage.completion_tokens = estimated_tokens(content_chars);
  usage.estimated = true;
}

}  // namespace

sdk::Result<sdk::Completion> run_streamed_call(sdk::HostServices& host, const sdk::CompletionRequest& request,
                                               sdk::CompletionObserver* observer, sdk::CancelToken cancel,
                                               const sdk::LlmTimeouts& configured, sdk::HttpRequest http,
                                               StreamReader& reader, const CompletionWire& wire) {
  const std::string provider(wire.provider);
  const sdk::LlmTimeouts timeouts{or_default(request.timeouts.connect, configured.connect),
                                  or_default(request.timeouts.first_token, configured.first_token),
                                  or_default(request.timeouts.idle, configured.idle),
                                  or_default(request.timeouts.total, configured.total)};

  auto shared = std::make_shared<CallShared>();
  const sdk::OnCancel link(cancel, [shared] { shared->source.request_stop(); });
  std::optional<sdk::Scheduler::TimerId> timer;
  if (timeouts.first_token.count() > 0) {
    // Without a timer (a full task queue) the HTTP first_byte timeout below still bounds the wait
    // for the headers.
    auto armed =
        host.scheduler().run_after(timeouts.first_token, [shared](sdk::CancelToken) { shared->expire(); });
    if (armed.ok()) timer = *armed;
  }
  const TimerGuard guard(host.scheduler(), timer);
  http.timeouts = {timeouts.connect, timeouts.first_token, timeouts.idle, timeouts.total};

  // Filled on the HTTP service's threads while send() blocks this one; read after it returned.
  sdk::HttpResponseHead head;
  bool streamed = false;
  std::string buffered;
  SseParser parser;
  sdk::Status stream_failure;
  bool caller_stopped = false;
  // The observer hears each distinct usage once, however many events repeat it.
  std::optional<sdk::TokenUsage> reported;
  auto report_usage = [&](const sdk::TokenUsage& usage) {
    if (observer == nullptr) return;
    if (reported && same_usage(*reported, usage)) return;
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
    const auto fed = parser.feed(piece, [&](const SseEvent& event) {
      auto step = reader.on_event(event);
      if (!step.status.ok()) {
        stream_failure = std::move(step.status);
        return false;
      }
      if (step.usage_changed) report_usage(reader.usage());
      if (step.content) {
        if (!shared->answered()) return false;
        if (observer != nullptr && !observer->on_delta(*step.content)) {
          caller_stopped = true;
          return false;
        }
      }
      return true;
    });
    if (fed == SseParser::Feed::kLineTooLong)
      stream_failure = sdk::Status::internal(provider + " sent an event line past the parser's limit");
    return fed == SseParser::Feed::kMore;
  };

  auto response = host.http().send(http, shared->source.get_token());

  // Tokens were spent on what arrived even when the call fails: account them, estimated when the
  // answer's own usage never came (or, by the wire's rule, stopped short of the text received).
  auto partial_usage = [&] {
    sdk::TokenUsage usage = reader.usage();
    if (!reader.usage_known()) {
      if (reader.content().empty()) return;
      usage.prompt_tokens = estimated_tokens(prompt_chars(request));
      usage.estimated = true;
      if (wire.partial_usage == PartialUsage::kEstimateWhenUnknown)
        usage.completion_tokens = estimated_tokens(reader.content().size());
    }
    if (wire.partial_usage == PartialUsage::kAtLeastReceived) {
      const auto received = estimated_tokens(reader.content().size());
      if (usage.completion_tokens < received) {
        usage.completion_tokens = received;
        usage.estimated = true;
      }
    }
    report_usage(usage);
  };

  // Settles the race with a timer still due: from here on it finds the call answered. A stream that
  // completed without any content (an empty answer) is no timeout.
  const bool expired = !shared->answered() && !(response.ok() && streamed && reader.finished());
  if (expired || !response.ok()) {
    partial_usage();
    // The caller's stop wins over a timer that fired after it: the caller gave up first.
    if (cancel.stop_requested()) return sdk::Status::cancelled("the completion was cancelled by its caller");
    if (expired)
      return sdk::Status::deadline_exceeded("first_token timeout: " + provider + " sent no content within " +
                                            std::to_string(timeouts.first_token.count()) + " ms");
    const auto& status = response.status();
    if (status.code() == sdk::StatusCode::kDeadlineExceeded &&
        status.message().find("first_byte") != std::string::npos)
      return sdk::Status::deadline_exceeded("first_token timeout: " + provider + " sent no answer within " +
                                            std::to_string(timeouts.first_token.count()) + " ms (" +
                                            status.message() + ")");
    return sdk::Status(status.code(), provider + " request failed: " + status.message());
  }
  if (head.status != 200) {
    if (observer != nullptr && retryable_http_status(head.status)) {
      if (auto delay = retry_after_of(head.headers, host.now())) observer->on_retry_after(*delay);
    }
    return wire.error_status(head.status, buffered);
  }

  if (!streamed) {
    bool usage_reported = false;
    auto completion = wire.parse_buffered(buffered, usage_reported);
    if (!completion.ok()) return completion;
    if (completion->model.empty()) completion->model = request.model;
    if (!usage_reported) estimate_usage(request, completion->content.size(), completion->usage);
    report_usage(completion->usage);
    if (observer != nullptr && !completion->content.empty() && !observer->on_delta(completion->content))
      completion->finish_reason = "stopped";
    return completion;
  }
  if (!stream_failure.ok()) return partial_usage(), stream_failure;

  sdk::Completion completion;
  completion.content = reader.content();
  completion.model = reader.model().empty() ? request.model : reader.model();
  completion.usage = reader.usage();
  if (caller_stopped) {
    completion.finish_reason = "stopped";
    partial_usage();
    if (reported) completion.usage = *reported;
    return completion;
  }
  if (!reader.finished())
    return partial_usage(), sdk::Status::unavailable(std::string(wire.unfinished_stream));
  completion.finish_reason = reader.finish_reason();
  if (!reader.usage_known()) estimate_usage(request, completion.content.size(), completion.usage);
  report_usage(completion.usage);
  return completion;
}

sdk::Result<std::string> fetch_model_page(sdk::HostServices& host, const sdk::ModelListRequest& request,
                                          sdk::CancelToken cancel, const sdk::LlmTimeouts& configured,
                                          std::string url, std::vector<sdk::HttpHeader> headers,
                                          const ModelListWire& wire) {
  sdk::HttpRequest http;
  http.url = std::move(url);
  http.headers = std::move(headers);
  http.timeouts = {or_default(request.timeouts.connect, configured.connect), request.timeouts.first_token,
                   or_default(request.timeouts.idle, configured.idle),
                   or_default(request.timeouts.total, configured.total)};
  auto response = host.http().send(http, cancel);
  if (!response.ok()) {
    if (cancel.stop_requested()) return sdk::Status::cancelled("listing models was cancelled by its caller");
    return sdk::Status(response.status().code(),
                       std::string(wire.provider) + " request failed: " + response.status().message());
  }
  if (response->status == 404) return sdk::Status::unimplemented(std::string(wire.not_listed));
  if (response->status != 200) return wire.error_status(response->status, response->body);
  return std::move(response->body);
}

sdk::Status scrubbed_status(const sdk::Status& failed, std::string_view api_key) {
  return sdk::Status(failed.code(), scrubbed(failed.message(), api_key));
}

sdk::Result<sdk::Completion> completion_result(sdk::HostServices& host, const sdk::CompletionRequest& request,
                                               sdk::Result<sdk::Completion> result) {
  if (result.ok()) return result;
  const sdk::Status failed = scrubbed_status(result.status(), request.api_key);
  host.log(sdk::LogLevel::kDebug,
           "completion with model " + request.model + " failed: " + failed.to_string());
  return failed;
}

}  // namespace samokoder::llm_common

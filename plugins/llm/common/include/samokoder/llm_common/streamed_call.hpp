// streamed_call: one completion call over HTTP as every LLM provider makes it, streamed as server-sent
// events or answered in one buffered body, so a provider states only its wire format: the request, how
// a stream event is decoded, how a buffered answer and an error body read, and what its messages say.
//
// The engine owns the rules the providers must agree on because the gateway and the usage ledger rely
// on them: the first-token timer raced against the first content, the caller's cancel winning over a
// timer that fired after it, a transport failure or an HTTP error mapped to a Status, Retry-After handed
// to the observer, usage reported once per distinct value, and tokens accounted even for a failed call.
//
// Not part of the SDK: plugin code shared by plugins/llm/* (linked statically into each).
// Ownership: run_streamed_call borrows everything it is given for the duration of the call; the
// first-token timer holds only a shared CallShared, never the call's stack.
// Thread-safety: run_streamed_call blocks the calling thread in HttpClient::send. While it blocks, the
// HTTP service's threads run the StreamReader and the observer's on_delta and on_usage (one at a time,
// in stream order); the scheduler's pool thread may expire the first-token timer. After send returned,
// the calling thread runs the rest: the final on_usage, on_retry_after, CompletionWire's callbacks.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <samokoder/llm_common/sse.hpp>
#include <samokoder/sdk/cancel.hpp>
#include <samokoder/sdk/host.hpp>
#include <samokoder/sdk/http_client.hpp>
#include <samokoder/sdk/llm.hpp>

namespace samokoder::llm_common {

// What one stream event means for the call.
struct StreamStep {
  sdk::Status status;                  // not OK: the call fails with it
  std::optional<std::string> content;  // a content piece, to hand to on_delta
  bool usage_changed = false;          // usage() is new: tell the observer
};

// A provider's stream decoder as the engine drives it: one per call, fed on the HTTP service's
// threads, read on the calling thread after the transfer ended.
class StreamReader {
 public:
  virtual ~StreamReader() = default;
  virtual StreamStep on_event(const SseEvent& event) = 0;
  virtual bool finished() const = 0;  // the stream said it is complete
  virtual bool usage_known() const = 0;
  virtual const sdk::TokenUsage& usage() const = 0;
  virtual const std::string& model() const = 0;
  virtual const std::string& content() const = 0;
  virtual std::string finish_reason() const = 0;
};

// Adapts a provider's StreamDecoder, whose on_event takes what its wire needs of an event (OpenAI's
// the data, Anthropic's the event name too): `feed(decoder, event)` calls it. The providers keep their
// decoders plain classes, tested without the engine.
template <typename Decoder, typename Feed>
class DecoderReader final : public StreamReader {
 public:
  DecoderReader(Decoder& decoder, Feed feed) : decoder_(decoder), feed_(std::move(feed)) {}
  StreamStep on_event(const SseEvent& event) override {
    auto step = feed_(decoder_, event);
    return {std::move(step.status), std::move(step.content), step.usage_changed};
  }
  bool finished() const override { return decoder_.finished(); }
  bool usage_known() const override { return decoder_.usage_known(); }
  const sdk::TokenUsage& usage() const override { return decoder_.usage(); }
  const std::string& model() const override { return decoder_.model(); }
  const std::string& content() const override { return decoder_.content(); }
  std::string finish_reason() const override { return decoder_.finish_reason(); }

 private:
  Decoder& decoder_;
  Feed feed_;
};

// How the tokens of a call that failed or was stopped part way are counted from what arrived.
enum class PartialUsage {
  // Usage comes last in the stream (OpenAI): when it never came, estimate both sides from the text.
  kEstimateWhenUnknown,
  // Usage comes first and is updated as the stream goes (Anthropic): besides estimating what never
  // came, raise completion_tokens to the text received, which a cut stream's count stops short of.
  kAtLeastReceived,
};

// What differs between providers for a completion call, besides the request and the decoder.
struct CompletionWire {
  std::string_view provider;           // "openai": names the endpoint in messages
  std::string_view unfinished_stream;  // the kUnavailable message when the stream stopped short
  PartialUsage partial_usage = PartialUsage::kEstimateWhenUnknown;
  // A buffered (non-streamed) answer, or a Status when it is not one; `usage_reported` says whether
  // the answer carried usage.
  std::function<sdk::Result<sdk::Completion>(std::string_view body, bool& usage_reported)> parse_buffered;
  // The Status for an HTTP error status with its body.
  std::function<sdk::Status(unsigned http_status, std::string_view body)> error_status;
};

// Makes the call `http` describes (method, URL, headers and body set; the engine sets the timeouts
// and the callbacks) and reads the answer through `reader`. Timeouts absent from `request` come from
// `configured`. Messages are not scrubbed of the key: the caller does that for every failure.
sdk::Result<sdk::Completion> run_streamed_call(sdk::HostServices& host, const sdk::CompletionRequest& request,
                                               sdk::CompletionObserver* observer, sdk::CancelToken cancel,
                                               const sdk::LlmTimeouts& configured, sdk::HttpRequest http,
                                               StreamReader& reader, const CompletionWire& wire);

// What differs between providers for one page of the model list.
struct ModelListWire {
  std::string_view provider;    // "openai": names the endpoint in messages
  std::string_view not_listed;  // the kUnimplemented message when the endpoint answers 404
  std::function<sdk::Status(unsigned http_status, std::string_view body)> error_status;
};

// GETs `url` with `headers` and returns the body of a 200 answer, or the Status of a failure, a 404
// or another error status. Connect, idle and total timeouts absent from `request` come from
// `configured`; first_token stays as requested (a list has no first token to wait for by default).
sdk::Result<std::string> fetch_model_page(sdk::HostServices& host, const sdk::ModelListRequest& request,
                                          sdk::CancelToken cancel, const sdk::LlmTimeouts& configured,
                                          std::string url, std::vector<sdk::HttpHeader> headers,
                                          const ModelListWire& wire);

// `failed` with the API key scrubbed from its message: every failure a provider returns goes through it.
sdk::Status scrubbed_status(const sdk::Status& failed, std::string_view api_key);

// What LlmProvider::complete returns for `result`: itself, or its failure scrubbed of the key and
// logged at debug level with the model, so an operator can see which call failed and why.
sdk::Result<sdk::Completion> completion_result(sdk::HostServices& host, const sdk::CompletionRequest& request,
                                               sdk::Result<sdk::Completion> result);

}  // namespace samokoder::llm_common

// The scripted model server proves its wire formats and its misbehaviours before the provider, gateway
// and pipeline suites rely on it. The client is the kernel's own outbound HTTP service, so what is
// checked here is what a provider plugin will receive.
#include "model_server.hpp"

#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "outbound_http/service.hpp"
#include "samokoder/llm_common/retry_after.hpp"
#include "samokoder/llm_common/sse.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

extern char** environ;

namespace samokoder::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class ModelServerTest : public ::testing::Test {
 protected:
  void SetUp() override { use_service(); }

  void use_service(const std::string& extra_ca_file = "") {
    client_.reset();
    config::HttpClientConfig config;
    config.connect_timeout_ms = 5000;
    config.first_byte_timeout_ms = 10000;
    config.idle_timeout_ms = 10000;
    config.total_timeout_ms = 30000;
    config.extra_ca_file = extra_ca_file;
    service_ = std::make_unique<outbound_http::Service>(config, outbound_http::ProxySettings{}, registry_);
    client_ = service_->client("test.client");
  }

  sdk::Result<sdk::HttpResponse> post(const std::string& url, const json& body,
                                      std::vector<sdk::HttpHeader> headers = {},
                                      const std::function<void(sdk::HttpRequest&)>& adjust = {}) {
    sdk::HttpRequest request;
    request.method = "POST";
    request.url = url;
    request.headers = std::move(headers);
    request.headers.push_back({"Content-Type", "application/json"});
    request.body = body.dump();
    if (adjust) adjust(request);
    return client_->send(request, sdk::never_cancelled());
  }

  sdk::Result<sdk::HttpResponse> get(const std::string& url, std::vector<sdk::HttpHeader> headers = {}) {
    sdk::HttpRequest request;
    request.url = url;
    request.headers = std::move(headers);
    return client_->send(request, sdk::never_cancelled());
  }

  static json openai_request(bool stream) {
    json body = {{"model", "test-model"},
                 {"messages", json::array({{{"role", "system"}, {"content", "be brief"}},
                                           {{"role", "user"}, {"content", "say hello"}}})},
                 {"stream", stream}};
    if (stream) body["stream_options"] = {{"include_usage", true}};
    return body;
  }

  static json anthropic_request(bool stream) {
    return {{"model", "test-model"},
            {"max_tokens", 64},
            {"system", json::array({{{"type", "text"}, {"text", "be brief"}}})},
            {"messages", json::array({{{"role", "user"}, {"content", "say hello"}}})},
            {"stream", stream}};
  }

  static std::vector<llm_common::SseEvent> events_of(const std::string& body) {
    llm_common::SseParser parser;
    std::vector<llm_common::SseEvent> events;
    parser.feed(body, [&](const llm_common::SseEvent& e) {
      events.push_back(e);
      return true;
    });
    EXPECT_FALSE(parser.pending()) << "the stream ended inside an event";
    return events;
  }

  static std::string header(const sdk::HttpResponse& response, std::string_view name) {
    for (const auto& h : response.headers) {
      if (std::equal(h.name.begin(), h.name.end(), name.begin(), name.end(),
                     [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
        return h.value;
    }
    return "";
  }

  metrics::Registry registry_;
  std::unique_ptr<outbound_http::Service> service_;
  std::unique_ptr<outbound_http::PluginClient> client_;
};

TEST_F(ModelServerTest, AnOpenAiStreamHasTheWireShapeOfTheRealApi) {
  ScriptedModelServer server;
  ScriptedUsage usage;
  usage.prompt_tokens = 12;
  usage.completion_tokens = 2;
  usage.cached_prompt_tokens = 8;
  ModelReply reply;
  reply.deltas = {"Hel", "lo"};
  reply.usage = usage;
  server.script({reply});
  auto response = post(server.url("/v1") + "/chat/completions", openai_request(true));
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(header(*response, "content-type"), "text/event-stream");
  const auto events = events_of(response->body);
  ASSERT_EQ(events.size(), 6u) << response->body;
  const json first = json::parse(events[0].data);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["model"], "test-model");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(json::parse(events[1].data)["choices"][0]["delta"]["content"], "Hel");
  EXPECT_EQ(json::parse(events[2].data)["choices"][0]["delta"]["content"], "lo");
  EXPECT_EQ(json::parse(events[3].data)["choices"][0]["finish_reason"], "stop");
  const json usage_chunk = json::parse(events[4].data);
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"], 12);
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], 2);
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"], 8);
  EXPECT_EQ(events[5].data, "[DONE]");

  EXPECT_EQ(server.request_count(), 1u);
  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].format, WireFormat::kOpenAi);
  EXPECT_EQ(calls[0].model(), "test-model");
  EXPECT_TRUE(calls[0].streamed());
  EXPECT_EQ(calls[0].prompt_text(), "be brief\nsay hello");
}

TEST_F(ModelServerTest, WithoutIncludeUsageOrWithoutScriptedUsageTheStreamCarriesNone) {
  ScriptedModelServer server;
  ModelReply no_usage;
  no_usage.usage.reset();
  server.script({ModelReply{}, no_usage});
  json body = openai_request(true);
  body.erase("stream_options");
  for (int i = 0; i < 2; ++i) {
    auto response = post(server.url("/v1/chat/completions"), i == 0 ? body : openai_request(true));
    ASSERT_TRUE(response.ok());
    EXPECT_EQ(response->body.find("\"usage\""), std::string::npos) << response->body;
    EXPECT_NE(response->body.find("[DONE]"), std::string::npos);
  }
}

TEST_F(ModelServerTest, AnAnthropicStreamHasTheEventSequenceAndCacheUsageOfTheRealApi) {
  ScriptedModelServer server;
  ScriptedUsage usage;
  usage.prompt_tokens = 100;
  usage.cached_prompt_tokens = 60;
  usage.cache_write_tokens = 30;
  usage.completion_tokens = 7;
  ModelReply reply;
  reply.deltas = {"Hel", "lo"};
  reply.usage = usage;
  reply.keep_alives = true;
  server.script({reply});
  auto response = post(server.url("") + "/v1/messages", anthropic_request(true),
                       {{"x-api-key", "k", true}, {"anthropic-version", "2023-06-01"}});
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  std::vector<std::string> names;
  json start;
  json message_delta;
  std::string text;
  for (const auto& event : events_of(response->body)) {
    if (event.event == "ping") continue;
    names.push_back(event.event);
    const json data = json::parse(event.data);
    EXPECT_EQ(data["type"], event.event) << "the data's type names its event";
    if (event.event == "message_start") start = data;
    if (event.event == "message_delta") message_delta = data;
    if (event.event == "content_block_delta") text += data["delta"]["text"].get<std::string>();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"message_start", "content_block_start", "content_block_delta",
                                             "content_block_delta", "content_block_stop", "message_delta",
                                             "message_stop"}));
  EXPECT_EQ(text, "Hello");
  EXPECT_EQ(start["message"]["usage"]["input_tokens"], 10) << "input excludes what the cache read or wrote";
  EXPECT_EQ(start["message"]["usage"]["cache_read_input_tokens"], 60);
  EXPECT_EQ(start["message"]["usage"]["cache_creation_input_tokens"], 30);
  EXPECT_EQ(message_delta["delta"]["stop_reason"], "end_turn");
  EXPECT_EQ(message_delta["usage"]["output_tokens"], 7);
  EXPECT_NE(response->body.find("event: ping"), std::string::npos);
  EXPECT_EQ(server.calls().at(0).format, WireFormat::kAnthropic);
}

TEST_F(ModelServerTest, AnAnthropicJsonAnswerStreamsThroughTheForcedTool) {
  ScriptedModelServer server;
  ModelReply reply;
  reply.tool_json = true;
  reply.deltas = {"{\"title\": ", "\"todo\"}"};
  server.script({reply, reply});
  json body = anthropic_request(true);
  body["tools"] = json::array({{{"name", "other"}}, {{"name", "project_spec"}}});
  body["tool_choice"] = {{"type", "tool"}, {"name", "project_spec"}};
  auto streamed = post(server.url("/v1/messages"), body);
  ASSERT_TRUE(streamed.ok());
  std::string partial;
  for (const auto& event : events_of(streamed->body)) {
    const json data = json::parse(event.data);
    if (event.event == "content_block_start") {
      EXPECT_EQ(data["content_block"]["type"], "tool_use");
      EXPECT_EQ(data["content_block"]["name"], "project_spec");
    }
    if (event.event == "content_block_delta") partial += data["delta"]["partial_json"].get<std::string>();
    if (event.event == "message_delta") {
      EXPECT_EQ(data["delta"]["stop_reason"], "tool_use");
    }
  }
  EXPECT_EQ(json::parse(partial), (json{{"title", "todo"}}));

  body["stream"] = false;
  auto buffered = post(server.url("/v1/messages"), body);
  ASSERT_TRUE(buffered.ok());
  const json message = json::parse(buffered->body);
  EXPECT_EQ(message["content"][0]["type"], "tool_use");
  EXPECT_EQ(message["content"][0]["input"], (json{{"title", "todo"}}));
}

TEST_F(ModelServerTest, BufferedAnswersInBothFormats) {
  ScriptedModelServer server;
  ModelReply reply;
  reply.deltas = {"a", "b"};
  reply.finish_reason = "length";
  server.script({reply, reply});
  auto openai = post(server.url("/v1/chat/completions"), openai_request(false));
  ASSERT_TRUE(openai.ok());
  const json completion = json::parse(openai->body);
  EXPECT_EQ(completion["object"], "chat.completion");
  EXPECT_EQ(completion["choices"][0]["message"]["content"], "ab");
  EXPECT_EQ(completion["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(completion["usage"]["completion_tokens"], 5);

  auto anthropic = post(server.url("/v1/messages"), anthropic_request(false));
  ASSERT_TRUE(anthropic.ok());
  const json message = json::parse(anthropic->body);
  EXPECT_EQ(message["content"][0]["text"], "ab");
  EXPECT_EQ(message["stop_reason"], "max_tokens");
  EXPECT_EQ(message["usage"]["output_tokens"], 5);
}

TEST_F(ModelServerTest, ErrorsCarryTheirStatusRetryAfterAndEachFormatsErrorShape) {
  ScriptedModelServer server;
  ModelReply limited;
  limited.status = 429;
  limited.retry_after_seconds = 3;
  limited.error_message = "slow down";
  ModelReply overloaded;
  overloaded.status = 529;
  server.script({limited, overloaded});
  auto openai = post(server.url("/v1/chat/completions"), openai_request(true));
  ASSERT_TRUE(openai.ok());
  EXPECT_EQ(openai->status, 429u);
  EXPECT_EQ(header(*openai, "retry-after"), "3");
  EXPECT_EQ(json::parse(openai->body)["error"]["message"], "slow down");
  auto anthropic = post(server.url("/v1/messages"), anthropic_request(true));
  ASSERT_TRUE(anthropic.ok());
  EXPECT_EQ(anthropic->status, 529u);
  EXPECT_EQ(json::parse(anthropic->body)["error"]["type"], "overloaded_error");
  EXPECT_EQ(header(*anthropic, "retry-after"), "");
}

TEST_F(ModelServerTest, AnExpectedKeyIsCheckedInEitherFormsHeader) {
  ScriptedModelServer::Options options;
  options.expected_key = "sk-right";
  ScriptedModelServer server(options);
  server.script({ModelReply{}, ModelReply{}});
  auto refused =
      post(server.url("/v1/chat/completions"), openai_request(false), {{"Authorization", "Bearer sk-wrong"}});
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 401u);
  EXPECT_EQ(json::parse(refused->body)["error"]["code"], "invalid_api_key");
  auto bearer =
      post(server.url("/v1/chat/completions"), openai_request(false), {{"Authorization", "Bearer sk-right"}});
  ASSERT_TRUE(bearer.ok());
  EXPECT_EQ(bearer->status, 200u);
  auto api_key = post(server.url("/v1/messages"), anthropic_request(false), {{"x-api-key", "sk-right"}});
  ASSERT_TRUE(api_key.ok());
  EXPECT_EQ(api_key->status, 200u);
  EXPECT_EQ(server.request_count(), 2u) << "a refused request is not an answered one";
}

TEST_F(ModelServerTest, AnExhaustedScriptFailsLoudlyAndAResponderAnswersByPrompt) {
  ScriptedModelServer server;
  auto exhausted = post(server.url("/v1/chat/completions"), openai_request(false));
  ASSERT_TRUE(exhausted.ok());
  EXPECT_EQ(exhausted->status, 500u);
  EXPECT_NE(exhausted->body.find("script exhausted"), std::string::npos);

  server.respond_with([](const ModelCall& call) {
    ModelReply reply;
    reply.deltas = {call.prompt_text().find("hello") != std::string::npos ? "hi there" : "what?"};
    return reply;
  });
  ModelReply scripted;
  scripted.deltas = {"from the script"};
  server.script({scripted});
  auto first = post(server.url("/v1/chat/completions"), openai_request(false));
  auto second = post(server.url("/v1/chat/completions"), openai_request(false));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(json::parse(first->body)["choices"][0]["message"]["content"], "from the script");
  EXPECT_EQ(json::parse(second->body)["choices"][0]["message"]["content"], "hi there");
}

TEST_F(ModelServerTest, SplitMergedAndKeptAliveStreamsCarryTheSameEvents) {
  ScriptedModelServer server;
  ModelReply plain;
  plain.deltas = {"one ", "two ",
                  "thr\xC3\xA9"
                  "e"};
  ModelReply split = plain;
  split.split_bytes = 1;
  ModelReply merged = plain;
  merged.merge_events = true;
  ModelReply alive = plain;
  alive.keep_alives = true;
  server.script({plain, split, merged, alive});
  std::vector<std::string> bodies;
  std::vector<std::size_t> pieces;
  std::vector<std::size_t> most_events_in_a_piece;
  for (int i = 0; i < 4; ++i) {
    std::size_t count = 0;
    std::size_t most = 0;
    std::string body;
    const auto collect = [&](sdk::HttpRequest& r) {
      r.on_body = [&](std::string_view piece) {
        body.append(piece);
        ++count;
        std::size_t events = 0;
        for (auto at = piece.find("\n\n"); at != std::string_view::npos; at = piece.find("\n\n", at + 2))
          ++events;
        most = std::max(most, events);
        return true;
      };
    };
    auto response = post(server.url("/v1/chat/completions"), openai_request(true), {}, collect);
    ASSERT_TRUE(response.ok()) << response.status().to_string();
    bodies.push_back(body);
    pieces.push_back(count);
    most_events_in_a_piece.push_back(most);
  }
  // The ids number the answers; apart from them the events are the same.
  const auto contents = [&](const std::string& body) {
    std::vector<std::string> out;
    for (const auto& event : events_of(body)) {
      if (event.data == "[DONE]") {
        out.push_back(event.data);
        continue;
      }
      json data = json::parse(event.data);
      data.erase("id");
      out.push_back(data.dump());
    }
    return out;
  };
  EXPECT_EQ(contents(bodies[1]), contents(bodies[0]));
  EXPECT_EQ(contents(bodies[2]), contents(bodies[0]));
  EXPECT_EQ(contents(bodies[3]), contents(bodies[0]));
  EXPECT_GT(pieces[1], pieces[0]) << "one byte a chunk arrives in more pieces";
  EXPECT_GE(most_events_in_a_piece[2], 2u) << "merged events arrive several to a piece";
  EXPECT_NE(bodies[3].find(": keep-alive\n\n"), std::string::npos);
}

TEST_F(ModelServerTest, AMalformedEventAndAnErrorEventAppearWhereScripted) {
  ScriptedModelServer server;
  ModelReply malformed;
  malformed.deltas = {"a", "b"};
  malformed.malformed_after = 1;
  ModelReply failing;
  failing.deltas = {"a", "b"};
  failing.error_after = 1;
  failing.error_message = "upstream broke";
  server.script({malformed, failing, failing});
  auto first = post(server.url("/v1/chat/completions"), openai_request(true));
  ASSERT_TRUE(first.ok());
  const auto events = events_of(first->body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_NE(events[2].data.find("this is not json"), std::string::npos) << "after one content event";
  EXPECT_TRUE(json::parse(events[3].data, nullptr, false).is_object()) << "the stream goes on";

  auto second = post(server.url("/v1/chat/completions"), openai_request(true));
  ASSERT_TRUE(second.ok()) << "an in-stream error ends the body properly";
  const auto error_events = events_of(second->body);
  ASSERT_EQ(error_events.size(), 3u);  // role chunk, "a", the error
  EXPECT_EQ(json::parse(error_events[2].data)["error"]["message"], "upstream broke");

  auto third = post(server.url("/v1/messages"), anthropic_request(true));
  ASSERT_TRUE(third.ok());
  const auto anthropic = events_of(third->body);
  ASSERT_FALSE(anthropic.empty());
  EXPECT_EQ(anthropic.back().event, "error");
  EXPECT_EQ(json::parse(anthropic.back().data)["error"]["type"], "overloaded_error");
}

TEST_F(ModelServerTest, ClosedAndStalledStreamsFailTheClientTheWayARealOutageDoes) {
  ScriptedModelServer server;
  ModelReply closing;
  closing.deltas = {"a", "b", "c"};
  closing.close_after = 2;
  ModelReply stalling;
  stalling.deltas = {"a", "b"};
  stalling.stall_after = 1;
  ModelReply silent;
  silent.stall_before_headers = true;
  ModelReply hangup;
  hangup.close_before_headers = true;
  server.script({closing, stalling, silent, hangup});

  std::string received;
  auto closed = post(server.url("/v1/chat/completions"), openai_request(true), {}, [&](sdk::HttpRequest& r) {
    r.on_body = [&](std::string_view piece) { return received.append(piece), true; };
  });
  EXPECT_EQ(closed.status().code(), sdk::StatusCode::kUnavailable) << closed.status().to_string();
  EXPECT_NE(received.find("\"b\""), std::string::npos) << "two content events came before the close";
  EXPECT_EQ(received.find("\"c\""), std::string::npos);

  auto stalled = post(server.url("/v1/chat/completions"), openai_request(true), {},
                      [](sdk::HttpRequest& r) { r.timeouts.idle = 300ms; });
  EXPECT_EQ(stalled.status().code(), sdk::StatusCode::kDeadlineExceeded);
  EXPECT_NE(stalled.status().message().find("idle"), std::string::npos);

  auto unanswered = post(server.url("/v1/chat/completions"), openai_request(true), {},
                         [](sdk::HttpRequest& r) { r.timeouts.first_byte = 300ms; });
  EXPECT_EQ(unanswered.status().code(), sdk::StatusCode::kDeadlineExceeded);
  EXPECT_NE(unanswered.status().message().find("first_byte"), std::string::npos);

  auto hung_up = post(server.url("/v1/chat/completions"), openai_request(true));
  EXPECT_EQ(hung_up.status().code(), sdk::StatusCode::kUnavailable);
  // Every connection the client gave up on was seen closed by the server: none is left stalling.
  EXPECT_TRUE(wait_until([&] { return server.connections_closed() == server.connections_accepted(); }, 10s))
      << server.connections_closed() << " of " << server.connections_accepted();
}

TEST_F(ModelServerTest, ASlowModelDelaysItsHeadersAndItsEvents) {
  ScriptedModelServer server;
  ModelReply slow;
  slow.delay_before_headers = 400ms;
  ModelReply trickle;
  trickle.deltas = {"a", "b", "c"};
  trickle.delay_between_events = 400ms;
  server.script({slow, trickle});
  auto late = post(server.url("/v1/chat/completions"), openai_request(true), {},
                   [](sdk::HttpRequest& r) { r.timeouts.first_byte = 100ms; });
  EXPECT_EQ(late.status().code(), sdk::StatusCode::kDeadlineExceeded);
  auto trickled = post(server.url("/v1/chat/completions"), openai_request(true), {},
                       [](sdk::HttpRequest& r) { r.timeouts.idle = 100ms; });
  EXPECT_EQ(trickled.status().code(), sdk::StatusCode::kDeadlineExceeded);
}

TEST_F(ModelServerTest, ServesTlsWithACaMadeAtTestTime) {
  const TestPki pki = make_pki();
  TempDir dir("samokoder-model-server");
  const auto ca = dir.path() / "ca.pem";
  std::ofstream(ca) << pki.ca_cert;
  use_service(ca.string());
  ScriptedModelServer::Options options;
  options.tls = &pki;
  ScriptedModelServer server(options);
  server.script({ModelReply{}});
  EXPECT_EQ(server.url("/v1").rfind("https://localhost:", 0), 0u) << server.url("/v1");
  auto response = post(server.url("/v1/chat/completions"), openai_request(true));
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  EXPECT_EQ(response->status, 200u);
  EXPECT_NE(response->body.find("hello"), std::string::npos);
}

TEST_F(ModelServerTest, ListsItsModelsInBothFormats) {
  ScriptedModelServer::Options options;
  options.models = {"m-one", "m-two"};
  ScriptedModelServer server(options);
  auto openai = get(server.url("/v1/models"), {{"Authorization", "Bearer x"}});
  ASSERT_TRUE(openai.ok());
  const json list = json::parse(openai->body);
  EXPECT_EQ(list["object"], "list");
  EXPECT_EQ(list["data"][1]["id"], "m-two");
  auto anthropic = get(server.url("/v1/models"), {{"x-api-key", "x"}, {"anthropic-version", "2023-06-01"}});
  ASSERT_TRUE(anthropic.ok());
  const json page = json::parse(anthropic->body);
  EXPECT_EQ(page["data"][0]["type"], "model");
  EXPECT_EQ(page["last_id"], "m-two");
  EXPECT_EQ(server.request_count(), 0u) << "listing models is not a completion";
}

TEST_F(ModelServerTest, ControlRoutesScriptItAndListItsCallsFromAnotherProcess) {
  ScriptedModelServer server;
  auto queued = post(server.url("/__script"), json::array({{{"deltas", {"remote"}}}, {{"status", 503}}}));
  ASSERT_TRUE(queued.ok());
  EXPECT_EQ(queued->status, 200u);
  auto bad = post(server.url("/__script"), json::array({{{"deltaz", {"typo"}}}}));
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400u);
  EXPECT_NE(bad->body.find("deltaz"), std::string::npos);

  auto first = post(server.url("/v1/chat/completions"), openai_request(false));
  auto second = post(server.url("/v1/chat/completions"), openai_request(false));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(json::parse(first->body)["choices"][0]["message"]["content"], "remote");
  EXPECT_EQ(second->status, 503u);
  auto calls = get(server.url("/__calls"));
  ASSERT_TRUE(calls.ok());
  const json listed = json::parse(calls->body);
  ASSERT_EQ(listed.size(), 2u) << "control requests are not calls";
  EXPECT_EQ(listed[0]["body"]["model"], "test-model");
  EXPECT_EQ(listed[0]["path"], "/v1/chat/completions");
}

TEST_F(ModelServerTest, ManyConcurrentStreamsAreAllAnswered) {
  ScriptedModelServer server;
  server.respond_with([](const ModelCall&) {
    ModelReply reply;
    reply.deltas = {"a", "b", "c"};
    reply.delay_between_events = 5ms;
    return reply;
  });
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 32; ++i) {
    threads.emplace_back([&] {
      auto response = post(server.url("/v1/chat/completions"), openai_request(true));
      if (response.ok() && response->status == 200 && response->body.find("[DONE]") != std::string::npos)
        ++ok;
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(ok.load(), 32);
  EXPECT_EQ(server.request_count(), 32u);
}

TEST_F(ModelServerTest, RetryAfterComesAsAnHttpDateWhenAsked) {
  ScriptedModelServer server;
  ModelReply limited;
  limited.status = 429;
  limited.retry_after_seconds = 30;
  limited.retry_after_as_date = true;
  server.script({limited});
  auto response = post(server.url("/v1/chat/completions"), openai_request(true));
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  EXPECT_EQ(response->status, 429u);
  const std::string date = header(*response, "retry-after");
  ASSERT_EQ(date.size(), 29u) << date;
  EXPECT_EQ(date.substr(25), " GMT") << date;
  // The date has whole seconds: read now, it is between 29 and 30 seconds away.
  const auto wait = llm_common::parse_retry_after(date, std::chrono::system_clock::now());
  ASSERT_TRUE(wait.has_value()) << "not an IMF-fixdate: " << date;
  EXPECT_GT(*wait, 28s) << date;
  EXPECT_LE(*wait, 30s) << date;
}

TEST_F(ModelServerTest, ErrorsCarryAChosenTypeOverHttpAndInTheStream) {
  ScriptedModelServer server;
  ModelReply http_error;
  http_error.status = 400;
  http_error.error_type = "context_length_exceeded";
  ModelReply openai_stream;
  openai_stream.deltas = {"a", "b"};
  openai_stream.error_after = 1;
  openai_stream.error_type = "rate_limit_exceeded";
  openai_stream.stream_error_status = 429;
  ModelReply anthropic_stream = openai_stream;
  anthropic_stream.error_type.clear();
  anthropic_stream.stream_error_status = 429;
  server.script({http_error, openai_stream, anthropic_stream});

  auto refused = post(server.url("/v1/chat/completions"), openai_request(true));
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 400u);
  EXPECT_EQ(json::parse(refused->body)["error"]["type"], "context_length_exceeded");

  auto openai = post(server.url("/v1/chat/completions"), openai_request(true));
  ASSERT_TRUE(openai.ok());
  const json error = json::parse(events_of(openai->body).back().data)["error"];
  EXPECT_EQ(error["type"], "rate_limit_exceeded");
  EXPECT_EQ(error["code"], 429) << "as vLLM and OpenRouter send it";

  auto anthropic = post(server.url("/v1/messages"), anthropic_request(true));
  ASSERT_TRUE(anthropic.ok());
  const auto events = events_of(anthropic->body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().event, "error");
  EXPECT_EQ(json::parse(events.back().data)["error"]["type"], "rate_limit_error") << "the type of 429";
}

TEST_F(ModelServerTest, AnOpenAiStreamCanEndCleanlyWithoutDone) {
  ScriptedModelServer server;
  ModelReply reply;
  reply.omit_done = true;
  server.script({reply});
  auto response = post(server.url("/v1/chat/completions"), openai_request(true));
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  EXPECT_EQ(response->body.find("[DONE]"), std::string::npos);
  const auto events = events_of(response->body);
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(json::parse(events.back().data).contains("usage")) << "the usage chunk is the last one";
}

TEST_F(ModelServerTest, AnAnthropicStreamKeptAliveHasCommentsAndPings) {
  ScriptedModelServer server;
  ModelReply reply;
  reply.keep_alives = true;
  server.script({reply});
  auto response = post(server.url("/v1/messages"), anthropic_request(true));
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  EXPECT_NE(response->body.find("\n: keep-alive\n\n"), std::string::npos);
  EXPECT_NE(response->body.find("event: ping"), std::string::npos);
  EXPECT_EQ(events_of(response->body).back().event, "message_stop");
}

TEST_F(ModelServerTest, AnthropicModelPagesFollowLimitAndAfterId) {
  ScriptedModelServer::Options options;
  options.models = {"m1", "m2", "m3", "m4", "m5"};
  options.models_page_size = 2;
  ScriptedModelServer server(options);
  const std::vector<sdk::HttpHeader> headers = {{"x-api-key", "x"}, {"anthropic-version", "2023-06-01"}};
  std::vector<std::string> ids;
  std::vector<bool> more;
  std::string after;
  for (int page = 0; page < 5; ++page) {
    auto response =
        get(server.url("/v1/models?limit=1000") + (after.empty() ? "" : "&after_id=" + after), headers);
    ASSERT_TRUE(response.ok()) << response.status().to_string();
    const json list = json::parse(response->body);
    for (const json& model : list["data"])
      ids.push_back(model["id"]);
    more.push_back(list["has_more"].get<bool>());
    if (!list["has_more"].get<bool>()) break;
    after = list["last_id"];
  }
  EXPECT_EQ(ids, options.models);
  EXPECT_EQ(more, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(server.calls().back().query, "limit=1000&after_id=m4");

  auto one = get(server.url("/v1/models?limit=1"), headers);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(json::parse(one->body)["data"].size(), 1u) << "limit is honoured below the page size";
}

TEST_F(ModelServerTest, ScriptedRepliesReadTheNewFieldsFromJson) {
  const ModelReply reply = model_reply_from_json({{"retry_after_seconds", 2},
                                                  {"retry_after_as_date", true},
                                                  {"error_type", "overloaded_error"},
                                                  {"stream_error_status", 529},
                                                  {"omit_done", true}});
  EXPECT_TRUE(reply.retry_after_as_date);
  EXPECT_EQ(reply.error_type, "overloaded_error");
  EXPECT_EQ(reply.stream_error_status, 529u);
  EXPECT_TRUE(reply.omit_done);
  EXPECT_FALSE(model_reply_from_json(json::object()).omit_done);
}

TEST(ScriptedModelServerProgram, ServesAScriptFileUntilSigterm) {
  TempDir dir("samokoder-model-server");
  const auto script = dir.path() / "script.json";
  std::ofstream(script) << R"([{"deltas": ["from ", "a file"]}])";
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  const std::string program = SAMOKODER_SCRIPTED_MODEL_SERVER;
  const std::string script_path = script.string();
  char* argv[] = {const_cast<char*>(program.c_str()), const_cast<char*>("--script"),
                  const_cast<char*>(script_path.c_str()), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  std::string line;
  char c = 0;
  while (::read(out[0], &c, 1) == 1 && c != '\n')
    line.push_back(c);
  ::close(out[0]);
  ASSERT_EQ(line.rfind("listening http://127.0.0.1:", 0), 0u) << line;
  const std::string base = line.substr(std::string("listening ").size());

  metrics::Registry registry;
  outbound_http::Service service(config::HttpClientConfig{}, outbound_http::ProxySettings{}, registry);
  auto client = service.client("test.client");
  sdk::HttpRequest request;
  request.method = "POST";
  request.url = base + "/v1/chat/completions";
  request.body = R"({"model": "m", "messages": [{"role": "user", "content": "hi"}]})";
  auto response = client->send(request, sdk::never_cancelled());
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  EXPECT_EQ(json::parse(response->body)["choices"][0]["message"]["content"], "from a file");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace samokoder::testing

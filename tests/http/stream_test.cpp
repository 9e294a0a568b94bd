// Streams end to end: a real Server on 127.0.0.1 (free port) answering server-sent events and WebSockets,
// driven by plain sockets (SSE, so the exact bytes on the wire are checked) and Beast's WebSocket
// client.
#include "http/stream.hpp"

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/error.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <gtest/gtest.h>

#include "http/server.hpp"
#include "http_client.hpp"

namespace samokoder::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using samokoder::testing::HttpClient;
using namespace std::chrono_literals;

// Records what the server tells a stream handler; the test thread waits on it.
class RecordingHandler final : public StreamHandler {
 public:
  enum class Throw { kNever, kOnOpen, kOnMessage };
  explicit RecordingHandler(Throw when = Throw::kNever) : throw_(when) {}

  void on_open(std::shared_ptr<StreamChannel> channel) override {
    std::lock_guard lock(mutex_);
    channel_ = std::move(channel);
    opened_ = true;
    changed_.notify_all();
    if (throw_ == Throw::kOnOpen) throw std::runtime_error("on_open failed on purpose");
  }
  void on_message(std::string_view text) override {
    std::lock_guard lock(mutex_);
    messages_.emplace_back(text);
    changed_.notify_all();
    if (throw_ == Throw::kOnMessage) throw std::runtime_error("on_message failed on purpose");
  }
  void on_close() override {
    std::lock_guard lock(mutex_);
    ++closes_;
    changed_.notify_all();
  }

  // The channel once on_open ran, else nullptr.
  std::shared_ptr<StreamChannel> wait_open(std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return opened_; });
    return channel_;
  }
  bool wait_closed(std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return closes_ > 0; });
  }
  bool wait_messages(std::size_t count, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return messages_.size() >= count; });
  }
  bool opened() {
    std::lock_guard lock(mutex_);
    return opened_;
  }
  int closes() {
    std::lock_guard lock(mutex_);
    return closes_;
  }
  std::vector<std::string> messages() {
    std::lock_guard lock(mutex_);
    return messages_;
  }

 private:
  const Throw throw_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::shared_ptr<StreamChannel> channel_;
  std::vector<std::string> messages_;
  bool opened_ = false;
  int closes_ = 0;
};

// Hands every stream request a fresh handler and lets the test find it.
class HandlerFactory {
 public:
  std::shared_ptr<RecordingHandler> make(RecordingHandler::Throw when = RecordingHandler::Throw::kNever) {
    auto handler = std::make_shared<RecordingHandler>(when);
    std::lock_guard lock(mutex_);
    handlers_.push_back(handler);
    changed_.notify_all();
    return handler;
  }
  // The index-th handler made (0-based); nullptr when it did not come in time.
  std::shared_ptr<RecordingHandler> get(std::size_t index, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return handlers_.size() > index; });
    return handlers_.size() > index ? handlers_[index] : nullptr;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::shared_ptr<RecordingHandler>> handlers_;
};

// Tags every answer, so a test sees that after() ran on stream responses too.
class TaggingMiddleware final : public Middleware {
 public:
  void after(const Request&, Response& response) override { response.set_header("X-After", "tagged"); }
};

// ---- a plain socket client, for the exact bytes of an SSE response ----

class RawClient {
 public:
  explicit RawClient(std::uint16_t port, int receive_buffer = 0) : socket_(io_) {
    socket_.open(tcp::v4());
    if (receive_buffer > 0) socket_.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    socket_.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port));
  }

  void send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes.data(), bytes.size())); }

  // Reads until `done(data())` holds; false when the connection ended or `timeout` passed first.
  bool read_until(const std::function<bool(const std::string&)>& done, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!done(data_)) {
      if (eof_) return false;
      bool completed = false;
      socket_.async_read_some(asio::buffer(chunk_), [&](const boost::system::error_code& ec, std::size_t n) {
        completed = true;
        data_.append(chunk_.data(), n);
        if (ec && ec != asio::error::operation_aborted) eof_ = true;
      });
      io_.restart();
      while (!completed && io_.run_one_until(deadline) != 0) {
      }
      if (!completed) {
        socket_.cancel();
        io_.restart();
        io_.run();
        return done(data_);
      }
    }
    return true;
  }
  // Reads until the server closes the connection.
  bool read_to_eof(std::chrono::milliseconds timeout) {
    read_until([this](const std::string&) { return eof_; }, timeout);
    return eof_;
  }

  const std::string& data() const { return data_; }
  bool eof() const { return eof_; }
  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  std::array<char, 16384> chunk_{};
  std::string data_;
  bool eof_ = false;
};

struct Head {
  std::string status_line;
  std::multimap<std::string, std::string> headers;  // names lowercased
  std::string body;                                 // what followed the head

  std::string header(std::string name) const {
    for (char& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool has(const std::string& name) const { return !header(name).empty(); }
};

bool has_head(const std::string& data) {
  return data.find("\r\n\r\n") != std::string::npos;
}

Head parse_head(const std::string& data) {
  Head head;
  const std::size_t end = data.find("\r\n\r\n");
  if (end == std::string::npos) throw std::runtime_error("no complete head in: " + data);
  std::string_view text(data.data(), end);
  head.body = data.substr(end + 4);
  std::size_t eol = text.find("\r\n");
  head.status_line = std::string(text.substr(0, eol));
  while (eol != std::string_view::npos) {
    text.remove_prefix(eol + 2);
    eol = text.find("\r\n");
    const std::string_view line = text.substr(0, eol);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    for (char& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
    head.headers.emplace(std::move(name), std::string(value));
  }
  return head;
}

// The chunks of a chunked body as far as it arrived.
struct Chunks {
  std::vector<std::string> chunks;
  bool last = false;  // the terminating chunk arrived
  bool valid = true;  // framing as RFC 9112 section 7.1 has it
};

Chunks decode_chunks(std::string_view body) {
  Chunks out;
  for (;;) {
    const std::size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) return out;
    std::size_t size = 0;
    const auto parsed = std::from_chars(body.data(), body.data() + eol, size, 16);
    if (parsed.ec != std::errc() || parsed.ptr != body.data() + eol) {
      out.valid = false;
      return out;
    }
    if (size == 0) {
      out.last = body.substr(eol + 2) == "\r\n";
      out.valid = body.substr(eol + 2).size() <= 2;
      return out;
    }
    if (body.size() < eol + 2 + size + 2) return out;
    out.chunks.emplace_back(body.substr(eol + 2, size));
    if (body.substr(eol + 2 + size, 2) != "\r\n") {
      out.valid = false;
      return out;
    }
    body.remove_prefix(eol + 2 + size + 2);
  }
}

// The chunks after the head received so far.
Chunks chunks_of(const std::string& data) {
  return has_head(data) ? decode_chunks(parse_head(data).body) : Chunks{};
}

// ---- a WebSocket client on Beast, every wait bounded ----

class WsClient {
 public:
  explicit WsClient(std::uint16_t port) : port_(port), ws_(io_) {
    ws_.next_layer().connect(tcp::endpoint(asio::ip::address_v4::loopback(), port));
    ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::ping) ++pings_;
    });
  }

  // The handshake; `response` gets the server's answer, also a refusal.
  boost::system::error_code handshake(const std::string& target, const std::string& origin = "",
                                      websocket::response_type* response = nullptr) {
    ws_.set_option(websocket::stream_base::decorator([origin](websocket::request_type& request) {
      if (!origin.empty()) request.set(bhttp::field::origin, origin);
    }));
    websocket::response_type ignored;
    boost::system::error_code ec;
    bool done = false;
    ws_.async_handshake(response ? *response : ignored, "127.0.0.1:" + std::to_string(port_), target,
                        [&](const boost::system::error_code& e) {
                          ec = e;
                          done = true;
                        });
    run(done, 5000ms);
    if (!done) throw std::runtime_error("WebSocket handshake timed out");
    return ec;
  }

  void write(std::string_view message, bool binary = false) {
    ws_.binary(binary);
    bool done = false;
    boost::system::error_code ec;
    ws_.async_write(asio::buffer(message.data(), message.size()),
                    [&](const boost::system::error_code& e, std::size_t) {
                      ec = e;
                      done = true;
                    });
    run(done, 5000ms);
    if (!done || ec) throw std::runtime_error("WebSocket write failed: " + ec.message());
  }

  // One message; nullopt when the stream ended (see error()) or `timeout` passed (the read stays
  // pending, so pings are still answered by the next call).
  std::optional<std::string> read(std::chrono::milliseconds timeout = 5000ms) {
    if (!reading_) {
      reading_ = true;
      read_done_ = false;
      ws_.async_read(buffer_, [this](const boost::system::error_code& ec, std::size_t) {
        reading_ = false;
        read_done_ = true;
        error_ = ec;
      });
    }
    run(read_done_, timeout);
    if (!read_done_ || error_) return std::nullopt;
    std::string message = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    return message;
  }

  // Reads until the stream ends; true when the server closed it with a close frame.
  bool read_until_closed(std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (read(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()))) continue;
      if (read_done_) return error_ == websocket::error::closed;
    }
    return false;
  }

  boost::system::error_code error() const { return error_; }
  websocket::close_reason reason() const { return ws_.reason(); }
  int pings() const { return pings_; }
  void drop() {
    boost::system::error_code ignored;
    ws_.next_layer().close(ignored);
    io_.restart();
    io_.run_for(1s);
  }

 private:
  void run(const bool& done, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    io_.restart();
    while (!done && io_.run_one_until(deadline) != 0) {
    }
  }

  std::uint16_t port_;
  asio::io_context io_;
  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
  bool reading_ = false;
  bool read_done_ = false;
  boost::system::error_code error_;
  int pings_ = 0;
};

config::ServerConfig stream_server_config() {
  config::ServerConfig c;
  c.listen.host = "127.0.0.1";
  c.listen.port = 0;
  c.io_threads = 2;
  c.request_pool.threads = 2;
  c.keep_alive_timeout_ms = 10000;
  c.request_timeout_ms = 10000;
  c.shutdown_grace_ms = 10000;
  c.cors_allowed_origins = {"https://app.example"};
  return c;
}

constexpr std::size_t kSmallQueue = 256 * 1024;
constexpr std::size_t kMaxMessage = 1024;

class StreamTest : public ::testing::Test {
 protected:
  StreamTest() : router_(std::make_shared<Router>()) {
    router_->add(
        bhttp::verb::get, "/healthz", [](Request&) { return Response::text(200, "ok"); },
        RouteOptions::inline_handler());
    StreamOptions quiet;
    quiet.heartbeat = 60s;
    quiet.max_message_bytes = kMaxMessage;
    StreamOptions beating = quiet;
    beating.heartbeat = 100ms;
    StreamOptions small = quiet;
    small.max_queued_bytes = kSmallQueue;
    // Pool routes (the default): the handler returns the stream from a worker thread.
    router_->add(bhttp::verb::get, "/sse",
                 [this, quiet](Request&) { return Response::event_stream(handlers_.make(), quiet); });
    router_->add(bhttp::verb::get, "/sse-beat",
                 [this, beating](Request&) { return Response::event_stream(handlers_.make(), beating); });
    router_->add(bhttp::verb::get, "/sse-small",
                 [this, small](Request&) { return Response::event_stream(handlers_.make(), small); });
    router_->add(bhttp::verb::get, "/sse-cached", [this, quiet](Request&) {
      Response r = Response::event_stream(handlers_.make(), quiet);
      r.set_header("Cache-Control", "no-cache");
      return r;
    });
    router_->add(bhttp::verb::get, "/sse-throw", [this, quiet](Request&) {
      return Response::event_stream(handlers_.make(RecordingHandler::Throw::kOnOpen), quiet);
    });
    router_->add(
        bhttp::verb::get, "/ws",
        [this, quiet](Request&) {
          Response r = Response::websocket(handlers_.make(), quiet);
          r.set_header("Sec-WebSocket-Protocol", "samokoder.v1");
          return r;
        },
        RouteOptions::inline_handler());
    router_->add(bhttp::verb::get, "/ws-beat",
                 [this, beating](Request&) { return Response::websocket(handlers_.make(), beating); });
    router_->add(bhttp::verb::get, "/ws-small",
                 [this, small](Request&) { return Response::websocket(handlers_.make(), small); });
    router_->add(bhttp::verb::get, "/ws-throw", [this, quiet](Request&) {
      return Response::websocket(handlers_.make(RecordingHandler::Throw::kOnMessage), quiet);
    });
  }

  ~StreamTest() override { server_.reset(); }

  void start(config::ServerConfig config = stream_server_config()) {
    ServerOptions options;
    options.access_log = false;
    server_ =
        std::make_unique<Server>(config, config::Environment::kDevelopment, router_, registry_, options);
    server_->use(std::make_shared<TaggingMiddleware>());
    const sdk::Status status = server_->start();
    ASSERT_TRUE(status.ok()) << status.to_string();
  }

  std::uint16_t port() const { return server_->port(); }

  // Opens an SSE stream on a fresh connection and waits for its head.
  std::unique_ptr<RawClient> open_sse(const std::string& target, const std::string& extra_headers = "",
                                      int receive_buffer = 0) {
    auto client = std::make_unique<RawClient>(port(), receive_buffer);
    client->send("GET " + target + " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n" + extra_headers +
                 "\r\n");
    if (!client->read_until(has_head, 5000ms)) throw std::runtime_error("no SSE head: " + client->data());
    return client;
  }

  double active(const std::string& kind) {
    return registry_.gauge("samokoder_http_streams_active", "", {{"kind", kind}}).value();
  }
  double closed(const std::string& kind, const std::string& reason) {
    return registry_.counter("samokoder_http_streams_closed_total", "", {{"kind", kind}, {"reason", reason}})
        .value();
  }
  bool server_answers() {
    HttpClient client("127.0.0.1", port(), 5000ms);
    return client.get("/healthz").status == 200;
  }

  HandlerFactory handlers_;
  std::shared_ptr<Router> router_;
  metrics::Registry registry_;
  std::unique_ptr<Server> server_;
};

// ---- format_sse_event ----

TEST(FormatSseEvent, WritesIdTypeAndOneDataLinePerLine) {
  EXPECT_EQ(format_sse_event("7", "step.committed", R"({"n":1})"),
            "id: 7\nevent: step.committed\ndata: {\"n\":1}\n\n");
  EXPECT_EQ(format_sse_event("", "", "plain"), "data: plain\n\n");
  EXPECT_EQ(format_sse_event("1", "", "a\nb\r\nc\rd"), "id: 1\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
  // A trailing line break is data too (the browser keeps it), and empty data is one empty line.
  EXPECT_EQ(format_sse_event("", "t", "a\n"), "event: t\ndata: a\ndata: \n\n");
  EXPECT_EQ(format_sse_event("", "", ""), "data: \n\n");
  EXPECT_EQ(format_sse_event("", "", "\r\n\r\n"), "data: \ndata: \ndata: \n\n");
  // Line breaks in id and type are not allowed; they never become fields of their own.
  EXPECT_EQ(format_sse_event("1\ndata: forged", "x\r\nid: 9", "d"),
            "id: 1data: forged\nevent: xid: 9\ndata: d\n\n");
}

// ---- server-sent events ----

TEST_F(StreamTest, SseHeadCarriesStreamingAndSecurityHeaders) {
  start();
  auto client = open_sse("/sse", "Origin: https://app.example\r\nX-Request-Id: sse-head-1\r\n");
  const Head head = parse_head(client->data());
  EXPECT_EQ(head.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(head.header("Content-Type"), "text/event-stream");
  EXPECT_EQ(head.header("Transfer-Encoding"), "chunked");
  EXPECT_FALSE(head.has("Content-Length"));
  EXPECT_EQ(head.header("Connection"), "close");
  EXPECT_EQ(head.header("Cache-Control"), "no-store");
  EXPECT_EQ(head.headers.count("cache-control"), 1U);
  EXPECT_EQ(head.header("X-Accel-Buffering"), "no");
  EXPECT_EQ(head.header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(head.header("X-Frame-Options"), "DENY");
  EXPECT_EQ(head.header("Server"), "samokoder");
  EXPECT_EQ(head.header("X-Request-Id"), "sse-head-1");
  EXPECT_EQ(head.header("Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(head.header("X-After"), "tagged");  // middleware after() ran on the stream's response
  EXPECT_TRUE(head.body.empty());

  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  ASSERT_TRUE(handler->wait_open());
  EXPECT_EQ(active("sse"), 1.0);
  EXPECT_EQ(registry_
                .counter("samokoder_http_requests_total", "",
                         {{"route", "/sse"}, {"method", "GET"}, {"status", "200"}})
                .value(),
            1.0);

  // A handler's own Cache-Control wins, as on any response.
  auto cached = open_sse("/sse-cached");
  EXPECT_EQ(parse_head(cached->data()).header("Cache-Control"), "no-cache");
  EXPECT_EQ(parse_head(cached->data()).headers.count("cache-control"), 1U);
}

TEST_F(StreamTest, SseEventsFromAnotherThreadArriveInOrderAndCloseEndsTheBody) {
  start();
  auto client = open_sse("/sse");
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  const auto channel = handler->wait_open();
  ASSERT_TRUE(channel);
  EXPECT_TRUE(channel->is_open());

  constexpr int kEvents = 200;
  auto event = [](int i) {
    return format_sse_event(std::to_string(i), "step", "line one of " + std::to_string(i) + "\nline two");
  };
  std::thread producer([&] {
    for (int i = 0; i < kEvents; ++i)
      ASSERT_TRUE(channel->send(event(i)));
    channel->close();
  });
  producer.join();

  ASSERT_TRUE(client->read_until([](const std::string& data) { return chunks_of(data).last; }, 5000ms))
      << client->data();
  const Chunks chunks = chunks_of(client->data());
  EXPECT_TRUE(chunks.valid);
  ASSERT_EQ(chunks.chunks.size(), static_cast<std::size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i)
    ASSERT_EQ(chunks.chunks[i], event(i)) << "event " << i;
  EXPECT_TRUE(client->read_to_eof(5000ms));  // the stream ended its connection
  EXPECT_TRUE(handler->wait_closed());
  EXPECT_EQ(handler->closes(), 1);
  EXPECT_FALSE(channel->is_open());
  EXPECT_FALSE(channel->send(event(kEvents)));
  EXPECT_EQ(channel->queued_bytes(), 0U);
  EXPECT_EQ(active("sse"), 0.0);
  EXPECT_EQ(closed("sse", "closed"), 1.0);
  EXPECT_EQ(registry_.gauge("samokoder_http_requests_in_flight", "").value(), 0.0);
}

TEST_F(StreamTest, SseHeartbeatCommentWhenIdle) {
  start();
  auto client = open_sse("/sse-beat");
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  const auto channel = handler->wait_open();
  ASSERT_TRUE(channel);
  const auto begin = Clock::now();
  ASSERT_TRUE(
      client->read_until([](const std::string& data) { return chunks_of(data).chunks.size() >= 2; }, 3000ms));
  // At least two heartbeats of 100 ms; far less than the 10 s request timeout.
  EXPECT_LT(Clock::now() - begin, 2000ms);
  for (const std::string& chunk : chunks_of(client->data()).chunks)
    EXPECT_EQ(chunk, ": keep-alive\n\n");
  // Events interleave with the heartbeats.
  ASSERT_TRUE(channel->send(format_sse_event("", "", "x")));
  ASSERT_TRUE(client->read_until(
      [](const std::string& data) {
        const auto chunks = chunks_of(data).chunks;
        return std::find(chunks.begin(), chunks.end(), "data: x\n\n") != chunks.end();
      },
      3000ms));
  EXPECT_TRUE(channel->is_open());
}

TEST_F(StreamTest, SseClientGoneCallsOnCloseWithinASecond) {
  start();
  auto client = open_sse("/sse");
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  const auto channel = handler->wait_open();
  ASSERT_TRUE(channel);
  client->close();
  const auto begin = Clock::now();
  ASSERT_TRUE(handler->wait_closed(1000ms));
  EXPECT_LT(Clock::now() - begin, 1000ms);
  EXPECT_FALSE(channel->is_open());
  EXPECT_FALSE(channel->send(format_sse_event("", "", "late")));
  EXPECT_EQ(active("sse"), 0.0);
  EXPECT_EQ(closed("sse", "client_gone"), 1.0);
  EXPECT_EQ(registry_.gauge("samokoder_http_connections_active", "").value(), 0.0);
}

TEST_F(StreamTest, SseSlowClientOverflowsTheBoundedQueueAndTheServerCarriesOn) {
  start();
  // A small receive window and a client that never reads: the server's writes stall soon.
  auto client = open_sse("/sse-small", "", 4096);
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  const auto channel = handler->wait_open();
  ASSERT_TRUE(channel);

  const std::string message = format_sse_event("", "blob", std::string(64 * 1024, 'b'));
  std::size_t max_queued = 0;
  int sent = 0;
  bool refused = false;
  for (int i = 0; i < 20000 && !refused; ++i) {
    refused = !channel->send(message);
    if (!refused) ++sent;
    max_queued = std::max(max_queued, channel->queued_bytes());
  }
  EXPECT_TRUE(refused) << "sent " << sent << " messages without the queue filling";
  EXPECT_LE(max_queued, kSmallQueue + message.size());
  EXPECT_TRUE(handler->wait_closed(2000ms));
  EXPECT_FALSE(channel->is_open());
  EXPECT_FALSE(channel->send(message));
  EXPECT_EQ(closed("sse", "overflow"), 1.0);
  EXPECT_EQ(active("sse"), 0.0);
  EXPECT_TRUE(server_answers());
}

TEST_F(StreamTest, SseHandlerThatThrowsInOnOpenEndsTheResponse) {
  start();
  auto client = open_sse("/sse-throw");
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  ASSERT_TRUE(handler->wait_closed());
  EXPECT_TRUE(client->read_until([](const std::string& data) { return chunks_of(data).last; }, 5000ms));
  EXPECT_TRUE(chunks_of(client->data()).chunks.empty());
  EXPECT_EQ(closed("sse", "error"), 1.0);
  EXPECT_TRUE(server_answers());
}

TEST_F(StreamTest, SseHeadRequestGetsTheHeadButNoStream) {
  start();
  HttpClient client("127.0.0.1", port());
  const auto head = client.request(bhttp::verb::head, "/sse");
  EXPECT_EQ(head.status, 200U);
  EXPECT_EQ(head.header("Content-Type"), "text/event-stream");
  EXPECT_TRUE(head.body.empty());
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  EXPECT_TRUE(handler->wait_closed());  // told, though never opened
  EXPECT_FALSE(handler->opened());
  EXPECT_EQ(client.get("/healthz").status, 200U);  // the connection stays in sync
  EXPECT_EQ(active("sse"), 0.0);
}

TEST_F(StreamTest, SseOverHttp10RunsUntilTheConnectionCloses) {
  start();
  RawClient client(port());
  client.send("GET /sse HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(client.read_until(has_head, 5000ms));
  EXPECT_FALSE(parse_head(client.data()).has("Transfer-Encoding"));
  EXPECT_FALSE(parse_head(client.data()).has("Content-Length"));
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  const auto channel = handler->wait_open();
  ASSERT_TRUE(channel);
  ASSERT_TRUE(channel->send(format_sse_event("1", "", "raw")));
  channel->close();
  ASSERT_TRUE(client.read_to_eof(5000ms));
  EXPECT_EQ(parse_head(client.data()).body, "id: 1\ndata: raw\n\n");
}

// ---- WebSocket ----

TEST_F(StreamTest, WebSocketHandshakeMessagesBothWaysAndClose) {
  start();
  WsClient client(port());
  websocket::response_type response;
  ASSERT_FALSE(client.handshake("/ws", "", &response));
  EXPECT_EQ(response.result_int(), 101U);
  EXPECT_EQ(response[bhttp::field::server], "samokoder");
  EXPECT_FALSE(response["X-Request-Id"].empty());
  EXPECT_EQ(response["X-After"], "tagged");
  EXPECT_EQ(response[bhttp::field::sec_websocket_protocol], "samokoder.v1");

  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  const auto channel = handler->wait_open();
  ASSERT_TRUE(channel);
  EXPECT_EQ(active("websocket"), 1.0);
  EXPECT_EQ(registry_
                .counter("samokoder_http_requests_total", "",
                         {{"route", "/ws"}, {"method", "GET"}, {"status", "101"}})
                .value(),
            1.0);

  constexpr int kMessages = 100;
  std::thread producer([&] {
    for (int i = 0; i < kMessages; ++i)
      ASSERT_TRUE(channel->send("message " + std::to_string(i)));
  });
  producer.join();
  for (int i = 0; i < kMessages; ++i) {
    const auto message = client.read();
    ASSERT_TRUE(message) << "message " << i << ": " << client.error().message();
    ASSERT_EQ(*message, "message " + std::to_string(i));
  }
  // Larger than a frame: written in pieces, read as one message.
  const std::string big(100 * 1024, 'w');
  ASSERT_TRUE(channel->send(big));
  EXPECT_EQ(client.read(), big);

  client.write("hello from the client");
  ASSERT_TRUE(handler->wait_messages(1));
  EXPECT_EQ(handler->messages(), std::vector<std::string>{"hello from the client"});

  channel->close(kCloseNormal, "done here");
  EXPECT_TRUE(client.read_until_closed());
  EXPECT_EQ(client.reason().code, kCloseNormal);
  EXPECT_EQ(std::string(client.reason().reason.data(), client.reason().reason.size()), "done here");
  EXPECT_TRUE(handler->wait_closed());
  EXPECT_EQ(handler->closes(), 1);
  EXPECT_FALSE(channel->send("late"));
  EXPECT_EQ(active("websocket"), 0.0);
  EXPECT_EQ(closed("websocket", "closed"), 1.0);
}

TEST_F(StreamTest, WebSocketOversizedMessageClosesWith1009) {
  start();
  WsClient client(port());
  ASSERT_FALSE(client.handshake("/ws"));
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  ASSERT_TRUE(handler->wait_open());
  client.write(std::string(kMaxMessage, 'a'));  // at the limit: fine
  ASSERT_TRUE(handler->wait_messages(1));
  client.write(std::string(kMaxMessage + 1, 'a'));
  EXPECT_TRUE(client.read_until_closed());
  EXPECT_EQ(client.reason().code, kCloseTooBig);
  EXPECT_TRUE(handler->wait_closed());
  EXPECT_EQ(handler->messages().size(), 1U);
  EXPECT_EQ(closed("websocket", "protocol"), 1.0);
}

TEST_F(StreamTest, WebSocketBinaryMessageClosesWith1003) {
  start();
  WsClient client(port());
  ASSERT_FALSE(client.handshake("/ws"));
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  ASSERT_TRUE(handler->wait_open());
  client.write("\x01\x02", /*binary=*/true);
  EXPECT_TRUE(client.read_until_closed());
  EXPECT_EQ(client.reason().code, static_cast<std::uint16_t>(websocket::close_code::unknown_data));
  EXPECT_TRUE(handler->wait_closed());
  EXPECT_TRUE(handler->messages().empty());
}

TEST_F(StreamTest, WebSocketRouteAnswersAPlainRequest426) {
  start();
  HttpClient client("127.0.0.1", port());
  const auto response = client.get("/ws");
  EXPECT_EQ(response.status, 426U);
  EXPECT_EQ(response.header("Content-Type"), "application/problem+json");
  EXPECT_EQ(response.json()["type"], "https://samokoder.dev/problems/upgrade_required");
  EXPECT_EQ(response.header("Upgrade"), "websocket");
  EXPECT_EQ(response.header("X-After"), "tagged");
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  EXPECT_TRUE(handler->wait_closed());
  EXPECT_FALSE(handler->opened());
  EXPECT_EQ(client.get("/healthz").status, 200U);
  EXPECT_EQ(active("websocket"), 0.0);
}

TEST_F(StreamTest, WebSocketFromAForeignOriginIsRefused) {
  start();
  WsClient foreign(port());
  websocket::response_type refusal;
  EXPECT_TRUE(foreign.handshake("/ws", "https://evil.example", &refusal));
  EXPECT_EQ(refusal.result_int(), 403U);
  auto refused = handlers_.get(0);
  ASSERT_TRUE(refused);
  EXPECT_TRUE(refused->wait_closed());
  EXPECT_FALSE(refused->opened());

  WsClient allowed(port());
  EXPECT_FALSE(allowed.handshake("/ws", "https://app.example"));
  WsClient same_origin(port());  // the page the server itself served
  EXPECT_FALSE(same_origin.handshake("/ws", "http://127.0.0.1:" + std::to_string(port())));
}

TEST_F(StreamTest, WebSocketPingsKeepAnAnsweringClientOpen) {
  start();
  WsClient client(port());
  ASSERT_FALSE(client.handshake("/ws-beat"));
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  ASSERT_TRUE(handler->wait_open());
  // Reading answers the server's pings; for a second nothing else happens and the stream stays.
  EXPECT_FALSE(client.read(1000ms));
  EXPECT_FALSE(client.error());
  EXPECT_GE(client.pings(), 3);
  EXPECT_EQ(handler->closes(), 0);
  client.drop();
  EXPECT_TRUE(handler->wait_closed(1000ms));
}

TEST_F(StreamTest, WebSocketClientThatStopsAnsweringIsClosed) {
  start();
  WsClient client(port());
  ASSERT_FALSE(client.handshake("/ws-beat"));
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  ASSERT_TRUE(handler->wait_open());
  // Never reading, the client answers no ping: two heartbeats later the server gives up.
  EXPECT_TRUE(handler->wait_closed(2000ms));
  EXPECT_EQ(closed("websocket", "timeout"), 1.0);
}

TEST_F(StreamTest, WebSocketHandlerThatThrowsClosesWith1011) {
  start();
  WsClient client(port());
  ASSERT_FALSE(client.handshake("/ws-throw"));
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  ASSERT_TRUE(handler->wait_open());
  client.write("boom");
  EXPECT_TRUE(client.read_until_closed());
  EXPECT_EQ(client.reason().code, kCloseInternal);
  EXPECT_TRUE(handler->wait_closed());
  EXPECT_EQ(closed("websocket", "error"), 1.0);
  EXPECT_TRUE(server_answers());
}

TEST_F(StreamTest, WebSocketSlowReaderIsClosedAndMemoryStaysBounded) {
  auto config = stream_server_config();
  config.request_timeout_ms = 500;  // the write deadline that ends a client that reads nothing
  start(config);
  WsClient client(port());
  ASSERT_FALSE(client.handshake("/ws-small"));
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  const auto channel = handler->wait_open();
  ASSERT_TRUE(channel);
  const std::string message(64 * 1024, 'm');
  std::size_t max_queued = 0;
  bool refused = false;
  for (int i = 0; i < 20000 && !refused; ++i) {
    refused = !channel->send(message);
    max_queued = std::max(max_queued, channel->queued_bytes());
  }
  EXPECT_TRUE(refused);
  EXPECT_LE(max_queued, kSmallQueue + message.size());
  EXPECT_TRUE(handler->wait_closed(5000ms));
  EXPECT_EQ(closed("websocket", "overflow"), 1.0);
  EXPECT_TRUE(server_answers());
}

// A client may send its first frame right behind the upgrade request, in the same packet.
TEST_F(StreamTest, WebSocketFrameSentWithTheHandshakeIsNotLost) {
  start();
  RawClient client(port());
  const std::string payload = "early";
  std::string frame = {static_cast<char>(0x81), static_cast<char>(0x80 | payload.size())};
  const std::array<char, 4> mask = {0x12, 0x34, 0x56, 0x78};
  frame.append(mask.data(), mask.size());
  for (std::size_t i = 0; i < payload.size(); ++i)
    frame += static_cast<char>(payload[i] ^ mask[i % 4]);
  client.send(
      "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" +
      frame);
  ASSERT_TRUE(client.read_until(has_head, 5000ms));
  EXPECT_EQ(parse_head(client.data()).status_line, "HTTP/1.1 101 Switching Protocols");
  EXPECT_EQ(parse_head(client.data()).header("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  ASSERT_TRUE(handler->wait_messages(1));
  EXPECT_EQ(handler->messages(), std::vector<std::string>{"early"});
}

// ---- server stop ----

TEST_F(StreamTest, StopEndsOpenStreamsAndReturnsWellWithinItsGrace) {
  start();  // grace 10 s, heartbeats 60 s: neither may hold the stop up
  auto sse = open_sse("/sse");
  auto sse_handler = handlers_.get(0);
  ASSERT_TRUE(sse_handler);
  ASSERT_TRUE(sse_handler->wait_open());
  WsClient ws(port());
  ASSERT_FALSE(ws.handshake("/ws"));
  auto ws_handler = handlers_.get(1);
  ASSERT_TRUE(ws_handler);
  ASSERT_TRUE(ws_handler->wait_open());

  const auto begin = Clock::now();
  auto stopped = std::async(std::launch::async, [this] { server_->stop(); });
  EXPECT_TRUE(ws.read_until_closed(5000ms));
  EXPECT_EQ(ws.reason().code, kCloseGoingAway);
  EXPECT_TRUE(sse->read_until([](const std::string& data) { return chunks_of(data).last; }, 5000ms));
  EXPECT_TRUE(sse->read_to_eof(5000ms));
  ASSERT_EQ(stopped.wait_for(5s), std::future_status::ready);
  stopped.get();
  EXPECT_LT(Clock::now() - begin, 5s);
  EXPECT_EQ(sse_handler->closes(), 1);
  EXPECT_EQ(ws_handler->closes(), 1);
  EXPECT_EQ(closed("sse", "server_stop"), 1.0);
  EXPECT_EQ(closed("websocket", "server_stop"), 1.0);
  EXPECT_EQ(active("sse"), 0.0);
  EXPECT_EQ(active("websocket"), 0.0);
  EXPECT_EQ(registry_.gauge("samokoder_http_connections_active", "").value(), 0.0);
}

// A client that never reads the close keeps its stream past the graceful phase; the grace still
// bounds the stop.
TEST_F(StreamTest, StopIsBoundedByTheGraceEvenWhenAStreamCannotFinish) {
  auto config = stream_server_config();
  config.shutdown_grace_ms = 300;
  start(config);
  auto sse = open_sse("/sse-small", "", 4096);
  auto handler = handlers_.get(0);
  ASSERT_TRUE(handler);
  const auto channel = handler->wait_open();
  ASSERT_TRUE(channel);
  // Fill the socket buffers without overflowing the queue, so the last chunk cannot be written.
  const std::string message = format_sse_event("", "", std::string(16 * 1024, 'x'));
  for (int i = 0; i < 64; ++i) {
    if (channel->queued_bytes() + message.size() > kSmallQueue / 2) break;
    ASSERT_TRUE(channel->send(message));
  }
  const auto begin = Clock::now();
  server_->stop();
  EXPECT_LT(Clock::now() - begin, 3s);
  EXPECT_TRUE(handler->wait_closed(1000ms));
  EXPECT_EQ(registry_.gauge("samokoder_http_connections_active", "").value(), 0.0);
}

}  // namespace
}  // namespace samokoder::http

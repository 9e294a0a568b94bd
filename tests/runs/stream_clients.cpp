#include "stream_clients.hpp"

#include <functional>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <sys/socket.h>
#include <sys/time.h>

namespace samokoder::runs_test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

void set_read_timeout(tcp::socket& socket, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

}  // namespace

struct SseClient::Impl {
  asio::io_context io;
  tcp::socket socket{io};
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  std::string chunk_data;
  // The parser keeps a reference to its chunk callback, so it lives here.
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk;
};

SseClient::SseClient(std::uint16_t port, const std::string& target, const Headers& headers)
    : impl_(std::make_unique<Impl>()) {
  impl_->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  bhttp::request<bhttp::empty_body> request{bhttp::verb::get, target, 11};
  request.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port));
  request.set(bhttp::field::accept, "text/event-stream");
  for (const auto& [name, value] : headers)
    request.set(name, value);
  bhttp::write(impl_->socket, request);
  impl_->parser.body_limit(boost::none);
  impl_->on_chunk = [this](std::uint64_t, beast::string_view body, beast::error_code&) {
    impl_->chunk_data.append(body.data(), body.size());
    return body.size();
  };
  impl_->parser.on_chunk_body(impl_->on_chunk);
  set_read_timeout(impl_->socket, std::chrono::milliseconds(10000));
  beast::error_code ec;
  bhttp::read_header(impl_->socket, impl_->buffer, impl_->parser, ec);
  if (ec) {
    ended_ = true;
    return;
  }
  status_ = impl_->parser.get().result_int();
  if (!impl_->parser.chunked()) {
    // Not a stream (a problem document): read it whole.
    bhttp::read(impl_->socket, impl_->buffer, impl_->parser, ec);
    pending_ = impl_->parser.get().body();
    ended_ = true;
  }
}

SseClient::~SseClient() = default;

std::string SseClient::header(const std::string& name) const {
  return std::string(impl_->parser.get()[name]);
}

bool SseClient::fill(std::chrono::milliseconds timeout) {
  if (ended_) return false;
  set_read_timeout(impl_->socket, timeout);
  beast::error_code ec;
  bhttp::read_some(impl_->socket, impl_->buffer, impl_->parser, ec);
  pending_ += impl_->chunk_data;
  impl_->chunk_data.clear();
  if (impl_->parser.is_done() ||
      (ec && ec != beast::error::timeout && ec != asio::error::would_block && ec != asio::error::try_again)) {
    ended_ = true;
  }
  return !ec;
}

std::optional<StreamEvent> SseClient::next(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto end = pending_.find("\n\n");
    if (end != std::string::npos) {
      const std::string block = pending_.substr(0, end);
      pending_.erase(0, end + 2);
      StreamEvent event;
      std::string data;
      bool comment_only = true;
      std::size_t at = 0;
      while (at <= block.size()) {
        const auto eol = block.find('\n', at);
        const std::string line = block.substr(at, eol == std::string::npos ? std::string::npos : eol - at);
        at = eol == std::string::npos ? block.size() + 1 : eol + 1;
        if (line.starts_with(":")) continue;
        comment_only = false;
        if (line.starts_with("id: ")) event.id = line.substr(4);
        if (line.starts_with("event: ")) event.type = line.substr(7);
        if (line.starts_with("data: ")) data += (data.empty() ? "" : "\n") + line.substr(6);
      }
      if (comment_only) {
        ++comments_;
        continue;
      }
      event.document = nlohmann::json::parse(data, nullptr, false);
      return event;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || ended_) return std::nullopt;
    fill(std::max(left, std::chrono::milliseconds(1)));
  }
}

void SseClient::close() {
  beast::error_code ec;
  impl_->socket.shutdown(tcp::socket::shutdown_both, ec);
  impl_->socket.close(ec);
  ended_ = true;
}

struct WsClient::Impl {
  asio::io_context io;
  beast::websocket::stream<tcp::socket> ws{io};
  beast::flat_buffer buffer;
};

WsClient::WsClient(std::uint16_t port, const std::string& target, const Headers& headers)
    : impl_(std::make_unique<Impl>()) {
  impl_->ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  set_read_timeout(impl_->ws.next_layer(), std::chrono::milliseconds(10000));
  impl_->ws.set_option(
      beast::websocket::stream_base::decorator([headers](beast::websocket::request_type& request) {
        for (const auto& [name, value] : headers)
          request.set(name, value);
      }));
  beast::websocket::response_type response;
  beast::error_code ec;
  impl_->ws.handshake(response, "127.0.0.1:" + std::to_string(port), target, ec);
  handshake_status_ = response.result_int();
  connected_ = !ec;
}

WsClient::~WsClient() = default;

std::optional<StreamEvent> WsClient::next(std::chrono::milliseconds timeout) {
  if (!connected_) return std::nullopt;
  set_read_timeout(impl_->ws.next_layer(), timeout);
  beast::error_code ec;
  impl_->buffer.clear();
  impl_->ws.read(impl_->buffer, ec);
  if (ec) {
    if (ec != beast::error::timeout && ec != asio::error::would_block && ec != asio::error::try_again)
      connected_ = false;
    return std::nullopt;
  }
  StreamEvent event;
  event.document = nlohmann::json::parse(beast::buffers_to_string(impl_->buffer.data()), nullptr, false);
  event.type = event.document.value("type", std::string());
  if (event.document.contains("seq") && event.document["seq"].is_number())
    event.id = std::to_string(event.document["seq"].get<std::int64_t>());
  return event;
}

void WsClient::close() {
  if (!connected_) return;
  beast::error_code ec;
  impl_->ws.close(beast::websocket::close_code::normal, ec);
  connected_ = false;
}

}  // namespace samokoder::runs_test

#include "http_client.hpp"

#include <functional>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace samokoder::testing {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

ClientResponse to_client_response(bhttp::response<bhttp::string_body>&& message) {
  ClientResponse out;
  out.status = message.result_int();
  out.version = message.version();
  for (const auto& field : message)
    out.headers.insert(field.name_string(), field.value());
  out.body = std::move(message.body());
  return out;
}

}  // namespace

std::string ClientResponse::header(std::string_view name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? std::string() : std::string(it->value());
}

bool ClientResponse::has_header(std::string_view name) const {
  return headers.find(name) != headers.end();
}

std::size_t ClientResponse::header_count(std::string_view name) const {
  return headers.count(name);
}

nlohmann::json ClientResponse::json() const {
  return nlohmann::json::parse(body);
}

struct HttpClient::State {
  asio::io_context context;
  tcp::socket socket{context};
  boost::beast::flat_buffer buffer;
  tcp::endpoint endpoint;
  std::string host_header;
  std::chrono::milliseconds timeout;

  // Runs the queued operations until `done` or the timeout; on timeout closes `s` and throws.
  void run(const bool& done, tcp::socket& s, std::string_view what) {
    context.restart();
    context.run_for(timeout);
    if (done) return;
    boost::system::error_code ignored;
    s.close(ignored);
    context.restart();
    context.run();
    throw std::runtime_error("HttpClient: timed out " + std::string(what));
  }

  void connect() {
    buffer.clear();
    boost::system::error_code ec;
    bool done = false;
    socket.async_connect(endpoint, [&](const boost::system::error_code& e) {
      ec = e;
      done = true;
    });
    run(done, socket, "connecting");
    if (ec) throw std::runtime_error("HttpClient: cannot connect to " + host_header + ": " + ec.message());
  }

  void close() {
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    buffer.clear();
  }
};

HttpClient::HttpClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
    : state_(std::make_unique<State>()) {
  state_->endpoint = tcp::endpoint(asio::ip::make_address(host), port);
  state_->host_header = host + ":" + std::to_string(port);
  state_->timeout = timeout;
}

HttpClient::~HttpClient() {
  state_->close();
}

void HttpClient::disconnect() {
  state_->close();
}

ClientResponse HttpClient::request(bhttp::verb method, std::string_view target, std::string_view body,
                                   const HeaderList& headers) {
  State& s = *state_;
  bhttp::request<bhttp::string_body> req{method, target, 11};
  for (const auto& [name, value] : headers)
    req.insert(name, value);
  if (req.find(bhttp::field::host) == req.end()) req.set(bhttp::field::host, s.host_header);
  req.body() = std::string(body);
  if (req.find(bhttp::field::content_length) == req.end() &&
      req.find(bhttp::field::transfer_encoding) == req.end() && !body.empty()) {
    req.content_length(body.size());
  }

  for (int attempt = 0;; ++attempt) {
    const bool fresh = !s.socket.is_open();
    if (fresh) {
      s.connect();
      ++connects_;
    }
    boost::system::error_code ec;
    bool done = false;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(boost::none);
    if (method == bhttp::verb::head) parser.skip(true);
    bhttp::async_write(s.socket, req, [&](const boost::system::error_code& write_ec, std::size_t) {
      if (write_ec) {
        ec = write_ec;
        done = true;
        return;
      }
      bhttp::async_read(s.socket, s.buffer, parser,
                        [&](const boost::system::error_code& read_ec, std::size_t) {
                          ec = read_ec;
                          done = true;
                        });
    });
    s.run(done, s.socket, "waiting for " + std::string(target));
    if (!ec) {
      ClientResponse response = to_client_response(parser.release());
      const bool keep = response.version >= 11
                            ? !boost::beast::iequals(response.header("Connection"), "close")
                            : boost::beast::iequals(response.header("Connection"), "keep-alive");
      if (!keep) s.close();
      return response;
    }
    s.close();
    // A kept connection the server closed meanwhile fails at once and without a byte; retry on a new one.
    const bool stale = ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
                       ec == asio::error::broken_pipe || ec == asio::error::eof;
    if (fresh || attempt > 0 || !stale || parser.got_some()) {
      throw std::runtime_error("HttpClient: " + std::string(target) + ": " + ec.message());
    }
  }
}

bool HttpClient::wait_for_close(std::chrono::milliseconds timeout) {
  State& s = *state_;
  if (!s.socket.is_open()) return false;
  std::array<char, 4096> chunk{};
  bool closed = false;
  std::function<void()> read_more = [&] {
    s.socket.async_read_some(asio::buffer(chunk), [&](const boost::system::error_code& ec, std::size_t) {
      if (ec) {
        closed = ec != asio::error::operation_aborted;
        return;
      }
      read_more();
    });
  };
  read_more();
  s.context.restart();
  s.context.run_for(timeout);
  if (!closed) {
    boost::system::error_code ignored;
    s.socket.cancel(ignored);
    s.context.restart();
    s.context.run();
    return false;
  }
  s.close();
  return true;
}

std::string HttpClient::send_raw(std::string_view bytes, std::chrono::milliseconds timeout) {
  State& s = *state_;
  tcp::socket socket(s.context);
  boost::system::error_code ec;
  bool connected = false;
  socket.async_connect(s.endpoint, [&](const boost::system::error_code& e) {
    ec = e;
    connected = true;
  });
  s.run(connected, socket, "connecting");
  if (ec) throw std::runtime_error("HttpClient: cannot connect to " + s.host_header + ": " + ec.message());

  std::string received;
  std::array<char, 16384> chunk{};
  bool closed = false;
  // Read while writing: a server that answers early and closes must not make us lose its answer.
  std::function<void()> read_more = [&] {
    socket.async_read_some(asio::buffer(chunk), [&](const boost::system::error_code& read_ec, std::size_t n) {
      received.append(chunk.data(), n);
      if (read_ec) {
        closed = read_ec != asio::error::operation_aborted;
        return;
      }
      read_more();
    });
  };
  asio::async_write(socket, asio::buffer(bytes.data(), bytes.size()),
                    [](const boost::system::error_code&, std::size_t) {});
  read_more();
  s.context.restart();
  s.context.run_for(timeout);
  if (!closed) {
    boost::system::error_code ignored;
    socket.close(ignored);
    s.context.restart();
    s.context.run();
  }
  last_raw_closed_ = closed;
  return received;
}

std::vector<ClientResponse> parse_responses(std::string_view raw) {
  std::vector<ClientResponse> out;
  while (!raw.empty()) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(boost::none);
    parser.eager(true);
    while (!parser.is_done()) {
      boost::system::error_code ec;
      const std::size_t used = parser.put(asio::buffer(raw.data(), raw.size()), ec);
      raw.remove_prefix(used);
      if (ec && ec != bhttp::error::need_more) throw std::runtime_error("parse_responses: " + ec.message());
      if (!parser.is_done() && (used == 0 || raw.empty()))
        throw std::runtime_error("parse_responses: truncated");
    }
    out.push_back(to_client_response(parser.release()));
  }
  return out;
}

}  // namespace samokoder::testing

#include "http/request.hpp"

#include <random>

#include "http/router.hpp"
#include "http/uri.hpp"

namespace samokoder::http {
namespace {

// splitmix64 seeded once per thread from the OS: request ids need uniqueness, not secrecy, and a
// per-thread generator keeps the hot path free of locks and system calls.
std::uint64_t next_random() noexcept {
  thread_local std::uint64_t state = [] {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
  }();
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

bool is_request_id_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

}  // namespace

sdk::Result<Request> Request::make(Message message, std::string remote_address) {
  Request request;
  request.reset(remote_address);
  if (!request.parse_target(message.target())) {
    return sdk::Status::invalid_argument("request target '" + std::string(message.target()) +
                                         "' is not a valid path");
  }
  request.assign_request_id(message["X-Request-Id"]);
  request.message_ = std::move(message);
  return request;
}

std::string_view Request::raw_path() const noexcept {
  return target().substr(raw_path_begin_, raw_path_end_ - raw_path_begin_);
}

std::string_view Request::query() const noexcept {
  const std::string_view t = target();
  if (query_begin_ >= t.size()) return {};
  return t.substr(query_begin_, t.find('#', query_begin_) - query_begin_);
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  return find_query_param(query(), name);
}

std::string_view Request::header(std::string_view name) const {
  const auto it = message_.find(name);
  return it == message_.end() ? std::string_view() : std::string_view(it->value());
}

std::string_view Request::param(std::string_view name) const noexcept {
  for (const Param& p : params_) {
    if (p.name == name) return span(p.value);
  }
  return {};
}

bool Request::is_valid_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!is_request_id_char(c)) return false;
  }
  return true;
}

void Request::reset(std::string_view remote_address) {
  message_ = {};
  path_.clear();
  segments_.clear();
  params_.clear();
  raw_path_begin_ = raw_path_end_ = query_begin_ = 0;
  request_id_size_ = 0;
  if (remote_address_ != remote_address) remote_address_.assign(remote_address);
  route_pattern_ = {};
  route_ = nullptr;
}

bool Request::parse_target(std::string_view target) {
  path_.clear();
  segments_.clear();
  params_.clear();
  if (target.size() >= UINT32_MAX) return false;
  std::size_t begin = 0;
  if (!target.empty() && target.front() != '/') {
    // absolute-form ("http://host/path"), which HTTP/1.1 servers must accept from proxies.
    const std::size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return false;
    begin = target.find('/', scheme_end + 3);
    if (begin == std::string_view::npos) return false;
  }
  if (begin >= target.size() || target[begin] != '/') return false;
  const std::size_t end = std::min(target.find_first_of("?#", begin), target.size());
  raw_path_begin_ = static_cast<std::uint32_t>(begin);
  raw_path_end_ = static_cast<std::uint32_t>(end);
  query_begin_ =
      static_cast<std::uint32_t>(end < target.size() && target[end] == '?' ? end + 1 : target.size());

  const std::string_view raw = target.substr(begin, end - begin);
  if (raw == "/") {
    path_.push_back('/');
    return true;
  }
  // Split on the encoded "/" first, then decode each segment, so "%2F" stays inside its segment.
  std::size_t pos = 1;
  for (;;) {
    const std::size_t slash = raw.find('/', pos);
    const std::string_view segment =
        raw.substr(pos, slash == std::string_view::npos ? raw.npos : slash - pos);
    path_.push_back('/');
    const std::size_t offset = path_.size();
    if (!decode_path_segment(segment, path_)) return false;
    segments_.push_back(
        {static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(path_.size() - offset)});
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return true;
}

void Request::assign_request_id(std::string_view incoming) {
  if (is_valid_request_id(incoming)) {
    std::copy(incoming.begin(), incoming.end(), request_id_.begin());
    request_id_size_ = static_cast<std::uint8_t>(incoming.size());
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int half = 0; half < 2; ++half) {
    std::uint64_t bits = next_random();
    for (int i = 0; i < 16; ++i, bits >>= 4)
      request_id_[half * 16 + i] = kHex[bits & 0xF];
  }
  request_id_size_ = 32;
}

}  // namespace samokoder::http

#include "core/logging.hpp"

#include <mutex>
#include <string>

#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <samokoder/sdk/redact.hpp>

namespace samokoder::core {
namespace {

// Every line, whoever logs it (a plugin quoting libpq, a kernel subsystem quoting a plugin's error),
// leaves with URL passwords and password= values redacted. Formatting runs on the logging thread, so
// the scan costs no request thread anything.
std::string redacted_payload(const spdlog::details::log_msg& msg) {
  return sdk::redact_credentials(std::string_view(msg.payload.data(), msg.payload.size()));
}

class RedactedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string text = redacted_payload(msg);
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<RedactedMessage>();
  }
};

// Writes the message payload redacted and JSON-escaped, so the json format yields one valid JSON object
// per line whatever a message contains.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : redacted_payload(msg)) {
      switch (c) {
        case '"':
          dest.append(std::string_view("\\\""));
          break;
        case '\\':
          dest.append(std::string_view("\\\\"));
          break;
        case '\n':
          dest.append(std::string_view("\\n"));
          break;
        case '\r':
          dest.append(std::string_view("\\r"));
          break;
        case '\t':
          dest.append(std::string_view("\\t"));
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            const char escaped[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xF], kHex[c & 0xF]};
            dest.append(escaped, escaped + sizeof(escaped));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

struct LoggingState {
  std::mutex mutex;
  spdlog::sink_ptr sink;
  std::string format = "text";
  spdlog::level::level_enum level = spdlog::level::info;
};

LoggingState& state() {
  static LoggingState instance;
  return instance;
}

std::unique_ptr<spdlog::formatter> make_formatter(const std::string& format) {
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonEscapedMessage>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","msg":"%*"})");
    return formatter;
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<RedactedMessage>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%e %-5l [%n] %*");
  return formatter;
}

spdlog::sink_ptr ensure_sink(LoggingState& s) {
  if (!s.sink) {
    // One background thread writes every line; a full queue drops the oldest line instead of blocking.
    spdlog::init_thread_pool(16384, 1);
    s.sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    s.sink->set_formatter(make_formatter(s.format));
  }
  return s.sink;
}

}  // namespace

void init_logging(const config::LogConfig& config) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.format = config.format;
  s.level = spdlog::level::from_str(config.level);
  ensure_sink(s)->set_formatter(make_formatter(s.format));
  spdlog::set_level(s.level);
}

std::shared_ptr<spdlog::logger> logger(std::string_view name) {
  const std::string key(name);
  if (auto existing = spdlog::get(key)) return existing;
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (auto existing = spdlog::get(key)) return existing;
  // ensure_sink() creates the thread pool on first use, so it must run before thread_pool() is read
  // (as function arguments their order would be unspecified).
  spdlog::sink_ptr sink = ensure_sink(s);
  auto created = std::make_shared<spdlog::async_logger>(key, std::move(sink), spdlog::thread_pool(),
                                                        spdlog::async_overflow_policy::overrun_oldest);
  created->set_level(s.level);
  created->flush_on(spdlog::level::err);
  spdlog::register_logger(created);
  return created;
}

void flush_logging() {
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->flush(); });
}

}  // namespace samokoder::core

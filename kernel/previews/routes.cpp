#include "previews/routes.hpp"

#include <charconv>

#include "http/stream.hpp"
#include "previews/grant.hpp"
#include "previews/proxy.hpp"
#include "security/encoding.hpp"

namespace samokoder::previews {

namespace {

using api::Access;
using api::problem_from_status;
using boost::beast::http::verb;
using nlohmann::json;

constexpr std::size_t kDefaultLogBytes = 64 * 1024;
constexpr std::size_t kMaxLogBytes = 1024 * 1024;
constexpr std::size_t kMaxCommandArgs = 64;
constexpr std::size_t kMaxCommandArgBytes = 4096;

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

json preview_json(const PreviewView& view, const api::ApiContext& context, const PreviewManager& manager) {
  json out = {
      {"project_id", view.project_id},
      {"state", view.state},
      {"detail", view.detail.empty() ? json(nullptr) : json(view.detail)},
      {"runner", view.runner.empty() ? json(nullptr) : json(view.runner)},
      {"node_id", view.node_id},
      {"port", view.port == 0 ? json(nullptr) : json(view.port)},
      {"pid", view.pid == 0 ? json(nullptr) : json(view.pid)},
      {"restarts", view.restarts},
      {"started_at", api::format_timestamp(view.started_at)},
      {"expires_at",
       view.expires_at == Timestamp::max() ? json(nullptr) : json(api::format_timestamp(view.expires_at))},
      {"last_request_at", api::timestamp_json(view.last_request_at)},
      {"url", nullptr}};
  if (!view.runner.empty() && (view.state == "starting" || view.state == "running")) {
    const std::string origin = manager.public_url(view.project_id);
    const auto expires = context.now() + std::chrono::seconds(context.config().previews.grant_ttl_seconds);
    const std::string grant =
        mint_grant(context.preview_grant_key(), view.owner_id, view.project_id, expires);
    if (!grant.empty()) {
      out["url"] = origin + std::string(kGrantPath) + "?grant=" + percent_encode(grant) + "&next=%2F";
      out["origin"] = origin;
    }
  }
  return out;
}

std::optional<std::uint64_t> parse_offset(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Follows a preview's log for one SSE client: the manager's ticker feeds it.
class LogStream final : public http::StreamHandler {
 public:
  LogStream(PreviewManager& manager, std::string owner, std::string project, std::uint64_t after)
      : manager_(manager), owner_(std::move(owner)), project_(std::move(project)), after_(after) {}
  void on_open(std::shared_ptr<http::StreamChannel> channel) override {
    manager_.follow_logs(owner_, project_, after_, std::move(channel));
  }
  void on_close() override {}

 private:
  PreviewManager& manager_;
  std::string owner_;
  std::string project_;
  std::uint64_t after_;
};

}  // namespace

void add_preview_routes(http::Router& router, api::ApiContext& context, PreviewManager& manager) {
  http::RouteOptions options;
  options.max_body_bytes = 64 * 1024;
  router.add(
      verb::post, "/api/v1/projects/{id}/preview",
      [&context, &manager](http::Request& request) {
        auto auth = context.authenticate(request, Access::kWrite);
        if (!auth) return auth.take_response();
        PreviewManager::StartRequest start;
        if (!request.body().empty()) {
          auto body = context.json_body(request);
          if (!body) return body.take_response();
          security::FieldReader reader(*body);
          auto runner = reader.optional_string("/runner", 1, 128);
          if (const json* command = reader.optional_value("/command"); command != nullptr) {
            if (!command->is_array() || command->empty() || command->size() > kMaxCommandArgs) {
              reader.add_error("/command",
                               "must be an array of 1.." + std::to_string(kMaxCommandArgs) + " strings");
            } else {
              for (std::size_t i = 0; i < command->size(); ++i) {
                const json& arg = (*command)[i];
                if (!arg.is_string() || arg.get<std::string>().size() > kMaxCommandArgBytes ||
                    arg.get<std::string>().find('\0') != std::string::npos ||
                    !security::is_valid_utf8(arg.get<std::string>())) {
                  reader.add_error("/command/" + std::to_string(i), "must be a string of UTF-8 without NUL");
                  continue;
                }
                start.command.push_back(arg.get<std::string>());
              }
              if (!start.command.empty() && start.command.front().empty())
                reader.add_error("/command/0", "must name a program");
            }
          }
          reader.reject_unknown({"runner", "command"});
          if (!reader.ok()) return api::validation_problem(reader.errors());
          if (runner) start.runner = *runner;
        }
        auto started = manager.start_preview(auth->user_id, std::string(request.param("id")), start);
        if (!started.ok()) return problem_from_status(started.status());
        context.audit(auth->user_id, "preview.started", started->project_id, request,
                      {{"runner", started->runner}});
        return http::Response::json(202, preview_json(*started, context, manager));
      },
      options);

  router.add(verb::get, "/api/v1/projects/{id}/preview", [&context, &manager](http::Request& request) {
    auto auth = context.authenticate(request, Access::kRead);
    if (!auth) return auth.take_response();
    auto view = manager.get_preview(auth->user_id, std::string(request.param("id")));
    if (!view.ok()) return problem_from_status(view.status());
    return http::Response::json(200, preview_json(*view, context, manager));
  });

  router.add(verb::delete_, "/api/v1/projects/{id}/preview", [&context, &manager](http::Request& request) {
    auto auth = context.authenticate(request, Access::kWrite);
    if (!auth) return auth.take_response();
    const std::string project(request.param("id"));
    if (auto stopped = manager.stop_preview(auth->user_id, project); !stopped.ok()) {
      return problem_from_status(stopped);
    }
    context.audit(auth->user_id, "preview.stopped", project, request);
    return http::Response::no_content();
  });

  router.add(verb::get, "/api/v1/projects/{id}/preview/logs", [&context, &manager](http::Request& request) {
    auto auth = context.authenticate(request, Access::kRead);
    if (!auth) return auth.take_response();
    const std::string project(request.param("id"));
    std::uint64_t after = 0;
    if (auto text = request.query_param("after")) {
      auto parsed = parse_offset(*text);
      if (!parsed) return api::validation_problem({{"/after", "must be a byte offset (0 or more)"}});
      after = *parsed;
    } else if (auto last = request.header("Last-Event-ID"); !last.empty()) {
      if (auto parsed = parse_offset(last)) after = *parsed;
    }
    std::size_t max_bytes = kDefaultLogBytes;
    if (auto text = request.query_param("max_bytes")) {
      auto parsed = parse_offset(*text);
      if (!parsed || *parsed < 1 || *parsed > kMaxLogBytes)
        return api::validation_problem({{"/max_bytes", "must be 1.." + std::to_string(kMaxLogBytes)}});
      max_bytes = static_cast<std::size_t>(*parsed);
    }
    // Answers now whether there is a log at all, also for a stream (404 rather than an empty stream).
    auto log = manager.logs(auth->user_id, project, after, max_bytes);
    if (!log.ok()) return problem_from_status(log.status());
    if (request.header("Accept").find("text/event-stream") == std::string_view::npos) {
      return http::Response::json(
          200, json{{"text", log->text}, {"end_offset", log->end_offset}, {"truncated", log->truncated}});
    }
    http::StreamOptions stream;
    stream.heartbeat = std::chrono::seconds(15);
    return http::Response::event_stream(std::make_shared<LogStream>(manager, auth->user_id, project, after),
                                        stream);
  });
}

}  // namespace samokoder::previews

#include "runs/routes.hpp"

#include <charconv>
#include <limits>

#include <samokoder/sdk/storage.hpp>

#include "http/stream.hpp"
#include "runs/event_hub.hpp"

namespace samokoder::runs {

namespace {

using api::Access;
using api::problem_from_status;
using boost::beast::http::verb;
using nlohmann::json;

json run_json(const sdk::Run& run) {
  return {{"id", run.id},
          {"project_id", run.project_id},
          {"state", run.state},
          {"description", run.description},
          {"error", run.error.empty() ? json(nullptr) : json(run.error)},
          {"created_at", api::format_timestamp(run.created_at)},
          {"updated_at", api::format_timestamp(run.updated_at)},
          {"started_at", api::timestamp_json(run.started_at)},
          {"finished_at", api::timestamp_json(run.finished_at)},
          {"last_event_seq", run.last_event_seq}};
}

json step_json(const sdk::RunStep& step, bool with_state) {
  json out = {{"id", step.id},
              {"run_id", step.run_id},
              {"sequence", step.sequence},
              {"agent", step.agent},
              {"summary", step.summary},
              {"created_at", api::format_timestamp(step.created_at)}};
  if (with_state) out["state"] = step.state;
  return out;
}

std::optional<std::int64_t> parse_seq(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

// The run, if the caller owns it.
api::Outcome<sdk::Run> owned_run(api::ApiContext& context, const std::string& owner_id,
                                 const std::string& run_id) {
  auto run =
      context.store<sdk::RunStore>([&](sdk::RunStore& runs) { return runs.get_run(owner_id, run_id); });
  if (!run.ok()) return problem_from_status(run.status());
  return std::move(run).value();
}

// Where a watcher starts: Last-Event-ID (what an EventSource sends when it reconnects) wins over
// ?after=; both are the seq of the last event the client has.
api::Outcome<std::int64_t> resume_point(const http::Request& request) {
  std::string_view text = request.header("Last-Event-ID");
  std::string pointer = "/Last-Event-ID";
  std::optional<std::string> query;
  if (text.empty()) {
    query = request.query_param("after");
    if (query) text = *query;
    pointer = "/after";
  }
  if (text.empty()) return std::int64_t{0};
  auto seq = parse_seq(text);
  if (!seq)
    return api::validation_problem({{pointer, "must be the seq of an event (a non-negative integer)"}});
  return *seq;
}

void add_run_collection(http::Router& router, api::ApiContext& context, RunEngine& engine) {
  http::RouteOptions options;
  options.max_body_bytes = 64 * 1024;
  router.add(
      verb::post, "/api/v1/projects/{id}/runs",
      [&context, &engine](http::Request& request) {
        auto auth = context.authenticate(request, Access::kWrite);
        if (!auth) return auth.take_response();
        auto body = context.json_body(request);
        if (!body) return body.take_response();
        security::FieldReader reader(*body);
        NewRunRequest run;
        run.project_id = std::string(request.param("id"));
        auto description = reader.required_string("/description", 1, kMaxDescriptionBytes);
        auto max_steps = reader.optional_integer("/limits/max_steps", 1, 1000000);
        auto max_tokens =
            reader.optional_integer("/limits/max_tokens", 1, std::numeric_limits<std::int64_t>::max());
        auto max_cost = reader.optional_integer("/limits/max_cost_micro_usd", 1,
                                                std::numeric_limits<std::int64_t>::max());
        auto max_wall = reader.optional_integer("/limits/max_wall_seconds", 1, 365LL * 24 * 3600);
        if (const json* models = reader.optional_value("/models"); models != nullptr) {
          if (!models->is_object()) {
            reader.add_error("/models", "must be an object of role -> \"provider/model\"");
          } else {
            for (const auto& [role, model] : models->items()) {
              if (!model.is_string() || model.get<std::string>().find('/') == std::string::npos ||
                  role.empty() || role.size() > 64) {
                reader.add_error("/models/" + role, "must be \"provider/model\"");
                continue;
              }
              run.models[role] = model.get<std::string>();
            }
          }
        }
        if (const json* limits = reader.optional_value("/limits"); limits != nullptr && limits->is_object()) {
          for (const auto& [key, value] : limits->items()) {
            if (key != "max_steps" && key != "max_tokens" && key != "max_cost_micro_usd" &&
                key != "max_wall_seconds")
              reader.add_error("/limits/" + key, "is not a known limit");
          }
        } else if (limits != nullptr) {
          reader.add_error("/limits", "must be an object");
        }
        reader.reject_unknown({"description", "models", "limits"});
        if (!reader.ok()) return api::validation_problem(reader.errors());
        run.description = *description;
        if (max_steps) run.max_steps = static_cast<std::uint32_t>(*max_steps);
        if (max_tokens) run.max_tokens = static_cast<std::uint64_t>(*max_tokens);
        if (max_cost) run.max_cost_micro_usd = *max_cost;
        if (max_wall) run.max_wall_seconds = static_cast<std::uint32_t>(*max_wall);
        auto created = engine.create_run(auth->user_id, run);
        if (!created.ok()) return problem_from_status(created.status());
        auto response = http::Response::json(201, run_json(*created));
        response.set_header("Location", "/api/v1/runs/" + created->id);
        return response;
      },
      options);

  router.add(verb::get, "/api/v1/projects/{id}/runs", [&context](http::Request& request) {
    auto auth = context.authenticate(request, Access::kRead);
    if (!auth) return auth.take_response();
    auto page = context.page_request(request);
    if (!page) return page.take_response();
    const std::string project_id(request.param("id"));
    auto runs = context.store<sdk::RunStore>(
        [&](sdk::RunStore& store) { return store.list_runs(auth->user_id, project_id, *page); });
    if (!runs.ok()) return problem_from_status(runs.status());
    json items = json::array();
    for (const auto& run : runs->items)
      items.push_back(run_json(run));
    return http::Response::json(200, api::page_json(std::move(items), runs->next_cursor));
  });
}

void add_run_reads(http::Router& router, api::ApiContext& context, RunEngine& engine) {
  router.add(verb::get, "/api/v1/runs/{id}", [&context, &engine](http::Request& request) {
    auto auth = context.authenticate(request, Access::kRead);
    if (!auth) return auth.take_response();
    auto run = owned_run(context, auth->user_id, std::string(request.param("id")));
    if (!run) return run.take_response();
    json out = run_json(*run);
    auto question = engine.open_question(auth->user_id, *run);
    if (!question.ok()) return problem_from_status(question.status());
    out["question"] = question->is_null() ? json(nullptr)
                                          : json{{"question_id", (*question)["question_id"]},
                                                 {"text", (*question)["text"]},
                                                 {"options", (*question)["options"]},
                                                 {"agent", (*question)["agent"]}};
    auto latest = context.store<sdk::RunStore>(
        [&](sdk::RunStore& runs) { return runs.latest_run_step(auth->user_id, run->id); });
    out["current_step"] = latest.ok() ? step_json(*latest, false) : json(nullptr);
    return http::Response::json(200, out);
  });

  router.add(verb::get, "/api/v1/runs/{id}/steps", [&context](http::Request& request) {
    auto auth = context.authenticate(request, Access::kRead);
    if (!auth) return auth.take_response();
    auto page = context.page_request(request);
    if (!page) return page.take_response();
    const std::string run_id(request.param("id"));
    auto steps = context.store<sdk::RunStore>(
        [&](sdk::RunStore& runs) { return runs.list_run_steps(auth->user_id, run_id, *page); });
    if (!steps.ok()) return problem_from_status(steps.status());
    json items = json::array();
    for (const auto& step : steps->items)
      items.push_back(step_json(step, false));
    return http::Response::json(200, api::page_json(std::move(items), steps->next_cursor));
  });

  router.add(verb::get, "/api/v1/runs/{id}/steps/{step_id}", [&context](http::Request& request) {
    auto auth = context.authenticate(request, Access::kRead);
    if (!auth) return auth.take_response();
    const std::string run_id(request.param("id"));
    const std::string step_id(request.param("step_id"));
    auto step = context.store<sdk::RunStore>(
        [&](sdk::RunStore& runs) { return runs.get_run_step(auth->user_id, step_id); });
    if (!step.ok()) return problem_from_status(step.status());
    if (step->run_id != run_id)
      return problem_from_status(sdk::Status::not_found("run " + run_id + " has no step " + step_id));
    return http::Response::json(200, step_json(*step, true));
  });

  // The events as a page, for clients that poll rather than stream (and for tests of the log).
  router.add(verb::get, "/api/v1/runs/{id}/events", [&context, &engine](http::Request& request) {
    auto auth = context.authenticate(request, Access::kRead);
    if (!auth) return auth.take_response();
    auto run = owned_run(context, auth->user_id, std::string(request.param("id")));
    if (!run) return run.take_response();
    auto after = resume_point(request);
    if (!after) return after.take_response();
    const std::string_view accept = request.header("Accept");
    if (accept.find("application/json") != std::string_view::npos &&
        accept.find("text/event-stream") == std::string_view::npos) {
      auto limit = request.query_param("limit");
      std::uint32_t n = 100;
      if (limit) {
        auto parsed = parse_seq(*limit);
        if (!parsed || *parsed < 1 || *parsed > sdk::kMaxPageLimit)
          return api::validation_problem({{"/limit", "must be 1.." + std::to_string(sdk::kMaxPageLimit)}});
        n = static_cast<std::uint32_t>(*parsed);
      }
      auto events = context.store<sdk::RunStore>(
          [&](sdk::RunStore& runs) { return runs.list_run_events(auth->user_id, run->id, *after, n); });
      if (!events.ok()) return problem_from_status(events.status());
      json items = json::array();
      for (const auto& event : *events)
        items.push_back(event_document(event, false));
      return http::Response::json(200, json{{"items", items}});
    }
    http::StreamOptions options;
    options.heartbeat = std::chrono::seconds(15);
    return http::Response::event_stream(
        engine.events().watch(auth->user_id, run->id, *after, WatchFormat::kServerSentEvents,
                              auth->expires_at),
        options);
  });

  router.add(verb::get, "/api/v1/runs/{id}/ws", [&context, &engine](http::Request& request) {
    auto auth = context.authenticate(request, Access::kRead);
    if (!auth) return auth.take_response();
    auto run = owned_run(context, auth->user_id, std::string(request.param("id")));
    if (!run) return run.take_response();
    auto after = resume_point(request);
    if (!after) return after.take_response();
    http::StreamOptions options;
    options.heartbeat = std::chrono::seconds(15);
    return http::Response::websocket(
        engine.events().watch(auth->user_id, run->id, *after, WatchFormat::kWebSocket, auth->expires_at),
        options);
  });
}

void add_run_actions(http::Router& router, api::ApiContext& context, RunEngine& engine) {
  http::RouteOptions options;
  options.max_body_bytes = 32 * 1024;
  router.add(
      verb::post, "/api/v1/runs/{id}/answers",
      [&context, &engine](http::Request& request) {
        auto auth = context.authenticate(request, Access::kWrite);
        if (!auth) return auth.take_response();
        auto body = context.json_body(request);
        if (!body) return body.take_response();
        security::FieldReader reader(*body);
        auto question = reader.required_string("/question_id", 1, 200);
        auto answer = reader.required_string("/answer", 0, kMaxMessageBytes);
        reader.reject_unknown({"question_id", "answer"});
        if (!reader.ok()) return api::validation_problem(reader.errors());
        auto event = engine.answer(auth->user_id, std::string(request.param("id")), *question, *answer);
        if (!event.ok()) return problem_from_status(event.status());
        return http::Response::json(200, event_document(*event, false));
      },
      options);

  router.add(
      verb::post, "/api/v1/runs/{id}/messages",
      [&context, &engine](http::Request& request) {
        auto auth = context.authenticate(request, Access::kWrite);
        if (!auth) return auth.take_response();
        auto body = context.json_body(request);
        if (!body) return body.take_response();
        security::FieldReader reader(*body);
        auto text = reader.required_string("/text", 1, kMaxMessageBytes);
        reader.reject_unknown({"text"});
        if (!reader.ok()) return api::validation_problem(reader.errors());
        auto event = engine.send_message(auth->user_id, std::string(request.param("id")), *text);
        if (!event.ok()) return problem_from_status(event.status());
        return http::Response::json(202, event_document(*event, false));
      },
      options);

  router.add(verb::post, "/api/v1/runs/{id}/cancel", [&context, &engine](http::Request& request) {
    auto auth = context.authenticate(request, Access::kWrite);
    if (!auth) return auth.take_response();
    auto run = engine.cancel_run(auth->user_id, std::string(request.param("id")));
    if (!run.ok()) return problem_from_status(run.status());
    return http::Response::json(200, run_json(*run));
  });

  router.add(verb::post, "/api/v1/runs/{id}/resume", [&context, &engine](http::Request& request) {
    auto auth = context.authenticate(request, Access::kWrite);
    if (!auth) return auth.take_response();
    auto run = engine.resume_run(auth->user_id, std::string(request.param("id")));
    if (!run.ok()) return problem_from_status(run.status());
    return http::Response::json(200, run_json(*run));
  });
}

}  // namespace

void add_runs_routes(http::Router& router, api::ApiContext& context, RunEngine& engine) {
  add_run_collection(router, context, engine);
  add_run_reads(router, context, engine);
  add_run_actions(router, context, engine);
}

}  // namespace samokoder::runs

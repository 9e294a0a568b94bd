#include "llm/routes.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include <samokoder/sdk/storage.hpp>

namespace samokoder::llm {

namespace {

using boost::beast::http::verb;
using nlohmann::json;

// The longest range one usage query may cover: a year of days keeps the answer bounded.
constexpr int kMaxUsageDays = 366;
constexpr int kDefaultUsageDays = 30;

struct Totals {
  std::int64_t requests = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t cached_prompt_tokens = 0;
  std::int64_t cost_micro_usd = 0;

  void add(const sdk::DailyUsage& row) {
    requests += row.requests;
    prompt_tokens += row.prompt_tokens;
    completion_tokens += row.completion_tokens;
    cached_prompt_tokens += row.cached_prompt_tokens;
    cost_micro_usd += row.cost_micro_usd;
  }
  // Written into `out` beside the keys it already has (provider, model, day).
  void write(json& out) const {
    out["requests"] = requests;
    out["prompt_tokens"] = prompt_tokens;
    out["completion_tokens"] = completion_tokens;
    out["cached_prompt_tokens"] = cached_prompt_tokens;
    out["cost_micro_usd"] = cost_micro_usd;
    out["cost_usd"] = static_cast<double>(cost_micro_usd) / 1e6;
  }
};

std::optional<std::chrono::sys_days> parse_day(std::string_view text) {
  int year = 0;
  unsigned month = 0;
  unsigned day = 0;
  char tail = 0;
  if (text.size() != 10 ||
      std::sscanf(std::string(text).c_str(), "%4d-%2u-%2u%c", &year, &month, &day, &tail) != 3) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(month),
                                         std::chrono::day(day)};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days(date);
}

std::string day_text(std::chrono::sys_days day) {
  const std::chrono::year_month_day date(day);
  std::array<char, 16> text{};
  std::snprintf(text.data(), text.size(), "%04d-%02u-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  return text.data();
}

// Whose usage a request asks for: the caller's own, one user's or everyone's (the last two for admins).
struct UsageScope {
  std::optional<std::string> user_id;  // nullopt: every user
  bool own = true;
};

api::Outcome<UsageScope> usage_scope(api::ApiContext& context, const http::Request& request,
                                     std::string& caller) {
  auto user = request.query_param("user_id");
  auto all = request.query_param("all_users");
  if (all && *all != "true" && *all != "false") {
    return api::validation_problem({{"/all_users", "expected true or false"}});
  }
  const bool everyone = all && *all == "true";
  if (everyone && user) {
    return api::validation_problem({{"/user_id", "give either user_id or all_users=true, not both"}});
  }
  // Someone else's usage is an admin's business: a scope the caller cannot have is refused, not
  // quietly narrowed to their own.
  auto auth = context.authenticate(request, (everyone || user) ? api::Access::kAdmin : api::Access::kRead);
  if (!auth) return auth.take_response();
  caller = auth->user_id;
  if (everyone) return UsageScope{std::nullopt, false};
  if (user) return UsageScope{*user, *user == auth->user_id};
  return UsageScope{auth->user_id, true};
}

json budgets_json(api::ApiContext& context, const config::LlmConfig& config, const std::string& user_id,
                  std::chrono::sys_days today, sdk::Status& failure) {
  json budgets = json::object();
  if (config.user_daily_tokens > 0 || config.user_daily_cost_usd > 0) {
    auto used = context.store<sdk::LlmRequestStore>(
        [&](sdk::LlmRequestStore& store) { return store.usage_of_user(user_id, today); });
    if (!used.ok()) {
      failure = used.status();
      return budgets;
    }
    const std::int64_t tokens = used->prompt_tokens + used->completion_tokens;
    if (config.user_daily_tokens > 0) {
      budgets["user_daily_tokens"] = {
          {"limit", config.user_daily_tokens},
          {"used", tokens},
          {"remaining",
           std::max<std::int64_t>(0, static_cast<std::int64_t>(config.user_daily_tokens) - tokens)}};
    }
    if (config.user_daily_cost_usd > 0) {
      budgets["user_daily_cost_usd"] = {
          {"limit", config.user_daily_cost_usd},
          {"used", static_cast<double>(used->cost_micro_usd) / 1e6},
          {"remaining",
           std::max(0.0, config.user_daily_cost_usd - static_cast<double>(used->cost_micro_usd) / 1e6)}};
    }
    budgets["resets_at"] = api::format_timestamp(today + std::chrono::days(1));
  }
  if (config.run_tokens > 0) budgets["run_tokens"] = {{"limit", config.run_tokens}};
  if (config.run_cost_usd > 0) budgets["run_cost_usd"] = {{"limit", config.run_cost_usd}};
  return budgets;
}

http::Response get_usage(api::ApiContext& context, const LlmGateway& gateway, http::Request& request) {
  std::string caller;
  auto scope = usage_scope(context, request, caller);
  if (!scope) return scope.take_response();

  const auto today = std::chrono::floor<std::chrono::days>(context.now());
  std::chrono::sys_days until = today;
  std::chrono::sys_days since = today - std::chrono::days(kDefaultUsageDays - 1);
  std::vector<security::FieldError> errors;
  for (const auto& [name, into] : {std::pair{"since", &since}, std::pair{"until", &until}}) {
    if (auto text = request.query_param(name)) {
      if (auto day = parse_day(*text)) {
        *into = *day;
      } else {
        errors.push_back({std::string("/") + name, "expected a UTC day such as 2026-01-31"});
      }
    }
  }
  if (errors.empty() && since > until) errors.push_back({"/since", "must not be after until"});
  if (errors.empty() && until - since >= std::chrono::days(kMaxUsageDays)) {
    errors.push_back({"/since", "a range covers at most " + std::to_string(kMaxUsageDays) + " days"});
  }
  if (!errors.empty()) return api::validation_problem(errors);

  auto days = context.store<sdk::LlmRequestStore>([&](sdk::LlmRequestStore& store) {
    return store.usage_by_day(scope->user_id, since, until + std::chrono::days(1));
  });
  if (!days.ok()) return api::problem_from_status(days.status());

  Totals totals;
  std::map<std::string, Totals> by_provider;
  std::map<std::pair<std::string, std::string>, Totals> by_model;
  json by_day = json::array();
  for (const auto& row : *days) {
    totals.add(row);
    by_provider[row.provider].add(row);
    by_model[{row.provider, row.model}].add(row);
    json entry = {{"day", row.day}, {"provider", row.provider}, {"model", row.model}};
    if (!scope->user_id) entry["user_id"] = row.user_id;
    Totals one;
    one.add(row);
    one.write(entry);
    by_day.push_back(std::move(entry));
  }
  json document = {{"since", day_text(since)}, {"until", day_text(until)}, {"by_day", std::move(by_day)}};
  document["scope"] = scope->user_id ? json{{"user_id", *scope->user_id}} : json{{"all_users", true}};
  totals.write(document["totals"]);
  json& providers = document["by_provider"] = json::array();
  for (const auto& [provider, sum] : by_provider) {
    json entry = {{"provider", provider}};
    sum.write(entry);
    providers.push_back(std::move(entry));
  }
  json& models = document["by_model"] = json::array();
  for (const auto& [key, sum] : by_model) {
    json entry = {{"provider", key.first}, {"model", key.second}};
    sum.write(entry);
    models.push_back(std::move(entry));
  }
  if (scope->user_id) {
    sdk::Status failure;
    document["budgets"] = budgets_json(context, gateway.config(), *scope->user_id, today, failure);
    if (!failure.ok()) return api::problem_from_status(failure);
  }
  return http::Response::json(200, document);
}

json request_json(const sdk::LlmRequest& row) {
  const auto optional_text = [](const std::string& text) {
    return text.empty() ? json(nullptr) : json(text);
  };
  return {{"id", row.id},
          {"user_id", row.user_id},
          {"project_id", optional_text(row.project_id)},
          {"run_id", optional_text(row.run_id)},
          {"step_id", optional_text(row.step_id)},
          {"role", optional_text(row.agent)},
          {"provider", row.provider},
          {"model", row.model},
          {"attempt", row.attempt},
          {"status", row.status},
          {"error", optional_text(row.error)},
          {"prompt_tokens", row.prompt_tokens},
          {"completion_tokens", row.completion_tokens},
          {"cached_prompt_tokens", row.cached_prompt_tokens},
          {"cache_write_tokens", row.cache_write_tokens},
          {"usage_estimated", row.usage_estimated},
          {"latency_ms", row.latency_ms},
          {"time_to_first_token_ms",
           row.time_to_first_token_ms < 0 ? json(nullptr) : json(row.time_to_first_token_ms)},
          {"cost_micro_usd", row.cost_micro_usd},
          {"cost_usd", static_cast<double>(row.cost_micro_usd) / 1e6},
          {"created_at", api::format_timestamp(row.created_at)}};
}

http::Response get_usage_requests(api::ApiContext& context, http::Request& request) {
  auto user = request.query_param("user_id");
  auto auth = context.authenticate(request, user ? api::Access::kAdmin : api::Access::kRead);
  if (!auth) return auth.take_response();
  auto page = context.page_request(request);
  if (!page) return page.take_response();
  const std::string user_id = user ? *user : auth->user_id;
  auto listed = context.store<sdk::LlmRequestStore>(
      [&](sdk::LlmRequestStore& store) { return store.list_llm_requests(user_id, *page); });
  if (!listed.ok()) return api::problem_from_status(listed.status());
  json items = json::array();
  for (const auto& row : listed->items)
    items.push_back(request_json(row));
  return http::Response::json(200, api::page_json(std::move(items), listed->next_cursor));
}

http::Response get_models(api::ApiContext& context, LlmGateway& gateway, http::Request& request) {
  auto auth = context.authenticate(request, api::Access::kRead);
  if (!auth) return auth.take_response();
  const config::LlmConfig& config = gateway.config();
  // Which roles use each "provider/model", for the console to show beside the model.
  std::map<std::string, std::vector<std::string>> roles_of;
  for (const auto& [role, chain] : config.roles) {
    for (const auto& entry : chain)
      roles_of[entry].push_back(role);
  }
  json items = json::array();
  for (auto& listed : gateway.models(auth->user_id, sdk::never_cancelled())) {
    json models = json::array();
    for (const auto& model : listed.models) {
      const std::string entry = listed.provider + "/" + model.id;
      json item = {{"id", model.id},
                   {"owned_by", model.owned_by.empty() ? json(nullptr) : json(model.owned_by)},
                   {"roles", roles_of.contains(entry) ? json(roles_of.at(entry)) : json::array()},
                   {"price", nullptr}};
      if (const auto price = config.prices.find(entry); price != config.prices.end()) {
        item["price"] = {{"prompt_usd_per_mtok", price->second.prompt_usd_per_mtok},
                         {"completion_usd_per_mtok", price->second.completion_usd_per_mtok},
                         {"cached_prompt_usd_per_mtok", price->second.cached_prompt_usd_per_mtok}};
      }
      models.push_back(std::move(item));
    }
    items.push_back({{"provider", listed.provider},
                     {"live", listed.live},
                     {"error", listed.error.empty() ? json(nullptr) : json(listed.error)},
                     {"configured_models", listed.configured},
                     {"models", std::move(models)}});
  }
  return http::Response::json(200, {{"items", std::move(items)}});
}

}  // namespace

void add_llm_routes(http::Router& router, api::ApiContext& context, LlmGateway& gateway) {
  http::RouteOptions options;
  options.group = std::string(api::kGroupDefault);
  router.add(
      verb::get, "/api/v1/usage",
      [&context, &gateway](http::Request& request) { return get_usage(context, gateway, request); }, options);
  router.add(
      verb::get, "/api/v1/usage/requests",
      [&context](http::Request& request) { return get_usage_requests(context, request); }, options);
  router.add(
      verb::get, "/api/v1/models",
      [&context, &gateway](http::Request& request) { return get_models(context, gateway, request); },
      options);
}

}  // namespace samokoder::llm

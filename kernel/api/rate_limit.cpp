#include "api/rate_limit.hpp"

#include "api/context.hpp"
#include "http/router.hpp"

namespace samokoder::api {

const RateLimits::Group* RateLimits::unchanged(const RateLimits* previous, const std::string& name,
                                               const config::RateLimitConfig& limit) {
  if (previous == nullptr) return nullptr;
  const auto it = previous->groups_.find(name);
  return it != previous->groups_.end() && it->second.limit == limit ? &it->second : nullptr;
}

sdk::Result<std::unique_ptr<RateLimits>> RateLimits::create(
    const std::map<std::string, config::RateLimitConfig>& groups, const RateLimits* previous) {
  std::unique_ptr<RateLimits> limits(new RateLimits());
  auto configured = groups;
  configured.try_emplace(std::string(kGroupDefault), config::RateLimitConfig{});
  for (const auto& [name, limit] : configured) {
    if (const Group* kept = unchanged(previous, name, limit)) {
      limits->groups_.emplace(name, *kept);
      continue;
    }
    security::RateLimiterOptions options;
    options.capacity = limit.capacity;
    options.refill_per_minute = limit.refill_per_minute;
    auto by_address = security::RateLimiter::create(options);
    if (!by_address.ok()) return by_address.status();
    auto by_principal = security::RateLimiter::create(options);
    if (!by_principal.ok()) return by_principal.status();
    limits->groups_.emplace(name,
                            Group{limit, std::move(by_address).value(), std::move(by_principal).value()});
  }
  return limits;
}

RateLimits::Group& RateLimits::group(std::string_view name) {
  if (auto it = groups_.find(name); it != groups_.end()) return it->second;
  return groups_.find(kGroupDefault)->second;
}

security::RateDecision RateLimits::acquire_address(std::string_view group_name, std::string_view address,
                                                   std::chrono::steady_clock::time_point now) {
  return group(group_name).by_address->try_acquire(address, now);
}

security::RateDecision RateLimits::acquire_principal(std::string_view group_name, std::string_view user_id,
                                                     std::chrono::steady_clock::time_point now) {
  return group(group_name).by_principal->try_acquire(user_id, now);
}

std::optional<http::Response> AddressRateLimitMiddleware::before(http::Request& request) {
  const std::string_view group =
      request.route() != nullptr ? std::string_view(request.route()->options.group) : kGroupDefault;
  if (group == kUnlimitedGroup) return std::nullopt;
  const auto decision = context_.rate_limits().acquire_address(group, context_.client_address(request),
                                                               context_.clock().monotonic_now());
  if (decision.allowed) return std::nullopt;
  return too_many_requests(decision.retry_after, "too many requests from this address; retry later");
}

}  // namespace samokoder::api

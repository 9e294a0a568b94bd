// RateLimits: the token buckets of every route group, one bucket per client address and one per
// principal (config security.rate_limits; a group without an entry uses "default"), and the
// middleware that charges the address bucket before a request is dispatched.
//
// The address check runs on the I/O thread before any handler (so a flood never reaches the worker
// pool or storage); the principal check runs in ApiContext::authenticate once the caller is known.
// Both answer 429 with Retry-After. Routes of the "ops" group (/healthz, /readyz, /metrics: probes
// and scrapers, cheap and unauthenticated) are not limited. Requests that match no route are
// charged to the "default" group, so probing for paths costs the same as using them.
//
// Buckets are per process: with several kernel nodes each node limits on its own (scale-out moves
// shared counters to PostgreSQL or Redis; login lockout already lives in storage).
//
// A config reload builds new RateLimits (create with `previous`) and the ApiContext publishes them: a
// group whose limit did not change keeps its limiters, and so its buckets; a changed group starts
// with full buckets at its new limit.
//
// Ownership: RateLimits shares its limiters with the RateLimits a reload built from it; the middleware
// references the ApiContext that owns them.
// Thread-safety: acquire_* are safe to call concurrently and never block on I/O.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>

#include "config/config.hpp"
#include "http/middleware.hpp"
#include "security/rate_limiter.hpp"

namespace samokoder::api {

class ApiContext;

inline constexpr std::string_view kUnlimitedGroup = "ops";

class RateLimits {
 public:
  // kInvalidArgument when a configured bucket is unusable (never after config validation). The groups
  // of `previous` whose limit is unchanged are taken over, buckets and all.
  static sdk::Result<std::unique_ptr<RateLimits>> create(
      const std::map<std::string, config::RateLimitConfig>& groups, const RateLimits* previous = nullptr);

  security::RateDecision acquire_address(std::string_view group, std::string_view address,
                                         std::chrono::steady_clock::time_point now);
  security::RateDecision acquire_principal(std::string_view group, std::string_view user_id,
                                           std::chrono::steady_clock::time_point now);

 private:
  struct Group {
    config::RateLimitConfig limit;
    std::shared_ptr<security::RateLimiter> by_address;
    std::shared_ptr<security::RateLimiter> by_principal;
  };
  RateLimits() = default;
  Group& group(std::string_view name);
  // The group `name` of `previous` when its limit equals `limit`, else null.
  static const Group* unchanged(const RateLimits* previous, const std::string& name,
                                const config::RateLimitConfig& limit);

  std::map<std::string, Group, std::less<>> groups_;  // always holds "default"; fixed after create
};

// Charges the route group's address bucket (see above); 429 problem+json with Retry-After when empty.
class AddressRateLimitMiddleware final : public http::Middleware {
 public:
  explicit AddressRateLimitMiddleware(const ApiContext& context) : context_(context) {}
  std::optional<http::Response> before(http::Request& request) override;

 private:
  const ApiContext& context_;
};

}  // namespace samokoder::api

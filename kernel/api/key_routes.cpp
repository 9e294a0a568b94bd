// Provider keys (BYOK): a user stores an API key per LLM provider; the kernel seals it
// (provider_key_crypto.hpp) before storage sees it, and the API only ever shows the masked form.
#include <optional>
#include <string>

#include "api/provider_key_crypto.hpp"
#include "api/resource_routes.hpp"

namespace samokoder::api {
namespace {

using boost::beast::http::verb;

nlohmann::json key_json(const sdk::ProviderKey& key) {
  return {{"provider", key.provider},
          {"masked_key", key.masked_hint},
          {"created_at", format_timestamp(key.created_at)},
          {"updated_at", format_timestamp(key.updated_at)}};
}

// The {provider} parameter, or a 400 naming the rule. Checked before storage, so the answer is the
// same whoever asks.
Outcome<std::string> provider_param(const http::Request& request) {
  const std::string_view provider = request.param("provider");
  if (!valid_provider_name(provider)) {
    return http::Response::problem(400, "invalid_provider", "Invalid Provider",
                                   "provider must be 1 to 32 characters of a-z, 0-9, '_' and '-'");
  }
  return std::string(provider);
}

// Asks the provider whether it accepts the key; nullopt when it does, else the problem to answer:
// 422 key_rejected (the provider refused it), 404 for a provider the server does not configure, 502
// provider_unreachable (the provider could not say; the key may be fine), 409 when it cannot be asked.
std::optional<http::Response> verification_problem(const ApiContext& context, const std::string& provider,
                                                   const std::string& key) {
  const sdk::Status verified = context.verify_provider_key(provider, key);
  switch (verified.code()) {
    case sdk::StatusCode::kOk:
      return std::nullopt;
    case sdk::StatusCode::kUnauthenticated:
    case sdk::StatusCode::kPermissionDenied:
      return http::Response::problem(422, "key_rejected", "Key Rejected",
                                     provider + " refused the key: " + verified.message());
    case sdk::StatusCode::kUnavailable:
    case sdk::StatusCode::kDeadlineExceeded:
    case sdk::StatusCode::kResourceExhausted:
    case sdk::StatusCode::kInternal:
      return http::Response::problem(
          502, "provider_unreachable", "Provider Unreachable",
          provider + " could not verify the key now (" + verified.message() +
              "); the key was not stored. Try again, or store it without \"verify\"");
    default:
      return problem_from_status(verified);
  }
}

}  // namespace

void add_key_routes(http::Router& router, ApiContext& context) {
  http::RouteOptions options;
  options.group = std::string(kGroupDefault);
  // A key is a few hundred bytes; the JSON around it needs little more.
  options.max_body_bytes = 16 * 1024;

  router.add(
      verb::get, "/api/v1/keys",
      [&context](http::Request& request) {
        auto auth = context.authenticate(request, Access::kRead);
        if (!auth) return auth.take_response();
        auto keys = context.store<sdk::ProviderKeyStore>([&](sdk::ProviderKeyStore& provider_keys) {
          return provider_keys.list_provider_keys(auth->user_id);
        });
        if (!keys.ok()) return problem_from_status(keys.status());
        nlohmann::json items = nlohmann::json::array();
        for (const auto& key : *keys)
          items.push_back(key_json(key));
        return http::Response::json(200, {{"items", items}});
      },
      options);

  router.add(
      verb::put, "/api/v1/keys/{provider}",
      [&context](http::Request& request) {
        auto auth = context.authenticate(request, Access::kWrite);
        if (!auth) return auth.take_response();
        auto provider = provider_param(request);
        if (!provider) return provider.take_response();
        auto body = context.json_body(request);
        if (!body) return body.take_response();
        security::FieldReader reader(*body);
        auto secret = reader.required_string("/api_key", 1, kMaxProviderKeyBytes);
        const bool verify = reader.optional_bool("/verify").value_or(false);
        reader.reject_unknown({"api_key", "verify"});
        if (!reader.ok()) return validation_problem(reader.errors());
        // Before sealing and storing: a key the provider refuses is never stored.
        if (verify) {
          if (auto refused = verification_problem(context, *provider, *secret)) return std::move(*refused);
        }
        auto sealed = seal_provider_key(context.secret_ring(), auth->user_id, *provider, *secret);
        if (!sealed.ok()) {
          if (sealed.status().code() == sdk::StatusCode::kInvalidArgument) {
            return validation_problem({security::FieldError{"/api_key", sealed.status().message()}});
          }
          return problem_from_status(sealed.status());
        }
        auto stored = context.store<sdk::ProviderKeyStore>(
            [&](sdk::ProviderKeyStore& provider_keys) { return provider_keys.put_provider_key(*sealed); });
        if (!stored.ok()) return problem_from_status(stored.status());
        context.audit(
            auth->user_id, "key.set", *provider, request,
            {{"provider", *provider}, {"masked_key", stored->masked_hint}, {"key_id", stored->key_id}});
        auto document = key_json(*stored);
        document["verified"] = verify;
        return http::Response::json(200, document);
      },
      options);

  router.add(
      verb::get, "/api/v1/keys/{provider}",
      [&context](http::Request& request) {
        auto auth = context.authenticate(request, Access::kRead);
        if (!auth) return auth.take_response();
        auto provider = provider_param(request);
        if (!provider) return provider.take_response();
        auto key = context.store<sdk::ProviderKeyStore>([&](sdk::ProviderKeyStore& provider_keys) {
          return provider_keys.get_provider_key(auth->user_id, *provider);
        });
        if (!key.ok()) return problem_from_status(key.status());
        return http::Response::json(200, key_json(*key));
      },
      options);

  router.add(
      verb::delete_, "/api/v1/keys/{provider}",
      [&context](http::Request& request) {
        auto auth = context.authenticate(request, Access::kWrite);
        if (!auth) return auth.take_response();
        auto provider = provider_param(request);
        if (!provider) return provider.take_response();
        const sdk::Status deleted =
            context.store<sdk::ProviderKeyStore>([&](sdk::ProviderKeyStore& provider_keys) {
              return provider_keys.delete_provider_key(auth->user_id, *provider);
            });
        if (!deleted.ok()) return problem_from_status(deleted);
        context.audit(auth->user_id, "key.deleted", *provider, request, {{"provider", *provider}});
        return http::Response::no_content();
      },
      options);
}

}  // namespace samokoder::api

// auth.apitoken: the "api_token" scheme of sdk::AuthProvider (see sdk/include/samokoder/sdk/auth.hpp
// and token.hpp for the token format).
#include <string>

#include <samokoder/sdk/auth.hpp>

#include "token.hpp"

namespace samokoder::auth_apitoken {
namespace {

class ApiTokenAuth final : public sdk::AuthProvider {
 public:
  sdk::Status init(sdk::HostServices& host) override {
    if (!host.config().is_object() || !host.config().empty()) {
      return sdk::Status::invalid_argument("config: auth.apitoken takes no settings; expected {}");
    }
    return {};
  }

  sdk::Status self_test() override {
    auto issued = issue_secret();
    if (!issued.ok()) return issued.status();
    auto match = verify_secret(issued->secret, issued->stored_hash);
    if (!match.ok() || !*match || !well_formed(issued->secret)) {
      return sdk::Status::internal("token self-test failed: issue and verify disagree");
    }
    return {};
  }

  std::string_view scheme() const noexcept override { return "api_token"; }

  sdk::Status check_policy(std::string_view secret) override {
    if (!well_formed(secret)) {
      return sdk::Status::invalid_argument("not a personal access token (skp_ and 43 base64url characters)");
    }
    return {};
  }

  sdk::Result<std::string> hash_secret(std::string_view secret) override { return sha256_hex(secret); }

  sdk::Result<bool> verify_secret(std::string_view secret, std::string_view stored_hash) override {
    auto digest = sha256_hex(secret);
    if (!digest.ok()) return digest.status();
    // An empty stored hash compares against a string of the same length, so it costs the same.
    const std::string absent(digest->size(), '-');
    const std::string_view expected = stored_hash.empty() ? std::string_view(absent) : stored_hash;
    if (expected.size() != digest->size()) {
      return sdk::Status::data_loss("the stored token hash is not a SHA-256 hex digest");
    }
    return constant_time_equal(*digest, expected) && !stored_hash.empty();
  }

  bool needs_rehash(std::string_view) const noexcept override { return false; }

  sdk::Result<sdk::IssuedSecret> issue_secret() override {
    auto token = make_token();
    if (!token.ok()) return token.status();
    auto digest = sha256_hex(*token);
    if (!digest.ok()) return digest.status();
    return sdk::IssuedSecret{std::move(token).value(), std::move(digest).value()};
  }
};

}  // namespace
}  // namespace samokoder::auth_apitoken

SAMOKODER_PLUGIN(samokoder::auth_apitoken::ApiTokenAuth, "auth.apitoken", "1.0.0",
                 "Personal access tokens (skp_...) stored as SHA-256 hashes")

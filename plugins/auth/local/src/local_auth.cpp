// auth.local: the "password" scheme of sdk::AuthProvider (see sdk/include/samokoder/sdk/auth.hpp).
#include <chrono>
#include <string>

#include <openssl/rand.h>

#include <samokoder/sdk/auth.hpp>

#include "password.hpp"

namespace samokoder::auth_local {
namespace {

class LocalAuth final : public sdk::AuthProvider {
 public:
  sdk::Status init(sdk::HostServices& host) override {
    host_ = &host;
    auto params = parse_params(host.config());
    if (!params.ok()) return params.status();
    params_ = *params;
    // What unknown accounts are verified against, so they cost what a real account costs (see
    // verify_secret). A decoy rather than a real hash: nothing to compute on the start-up path.
    auto decoy = decoy_hash(params_);
    if (!decoy.ok()) return decoy.status();
    decoy_hash_ = std::move(decoy).value();
    host.log(sdk::LogLevel::kInfo, "argon2id m=" + std::to_string(params_.memory_kib) +
                                       " KiB, t=" + std::to_string(params_.iterations) +
                                       ", p=" + std::to_string(params_.parallelism));
    return {};
  }

  // Proves libargon2 hashes and verifies before the generation takes traffic. With the smallest
  // parameters: the configured ones were range-checked in init, and a full-cost run here would put
  // tens of milliseconds of memory-hard work on every start and reload.
  sdk::Status self_test() override {
    constexpr Argon2Params kSmallest{8, 1, 1};
    auto made = hash("self-test password", kSmallest);
    if (!made.ok()) return made.status();
    auto good = verify("self-test password", *made);
    auto bad = verify("another password", *made);
    if (!good.ok() || !bad.ok() || !*good || *bad) {
      return sdk::Status::internal("argon2id self-test failed: hash and verify disagree");
    }
    return {};
  }

  std::string_view scheme() const noexcept override { return "password"; }

  sdk::Status check_policy(std::string_view secret) override { return auth_local::check_policy(secret); }

  sdk::Result<std::string> hash_secret(std::string_view secret) override {
    const auto started = host_->monotonic_now();
    auto made = hash(secret, params_);
    observe("hash", started);
    return made;
  }

  sdk::Result<bool> verify_secret(std::string_view secret, std::string_view stored_hash) override {
    const auto started = host_->monotonic_now();
    sdk::Result<bool> result = false;
    if (stored_hash.empty()) {
      // Same work as a real account, same answer as a wrong password.
      auto ignored = verify(secret, decoy_hash_);
      result = ignored.ok() ? sdk::Result<bool>(false) : ignored;
    } else {
      result = verify(secret, stored_hash);
    }
    observe("verify", started);
    return result;
  }

  bool needs_rehash(std::string_view stored_hash) const noexcept override {
    const auto params = params_of(stored_hash);
    return !params || *params != params_;
  }

  sdk::Result<sdk::IssuedSecret> issue_secret() override {
    return sdk::Status::unimplemented("passwords are chosen by their users, not issued");
  }

 private:
  void observe(std::string_view operation, std::chrono::steady_clock::time_point started) {
    const double seconds = std::chrono::duration<double>(host_->monotonic_now() - started).count();
    const sdk::MetricLabel labels[] = {{"operation", operation}};
    host_->histogram_observe("argon2_seconds", labels, seconds);
  }

  sdk::HostServices* host_ = nullptr;
  Argon2Params params_;
  std::string decoy_hash_;
};

}  // namespace
}  // namespace samokoder::auth_local

SAMOKODER_PLUGIN(samokoder::auth_local::LocalAuth, "auth.local", "1.0.0",
                 "Email and password sign-in: Argon2id password hashes and the password policy")

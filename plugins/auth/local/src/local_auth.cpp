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
    // A hash of a random password nobody knows, made with the configured parameters: verifying
    // against it costs what a real account costs (see verify_secret).
    unsigned char random[32];
    if (RAND_bytes(random, sizeof random) != 1) return sdk::Status::internal("no random bytes available");
    auto dummy = hash(std::string_view(reinterpret_cast<const char*>(random), sizeof random), params_);
    if (!dummy.ok()) return dummy.status();
    dummy_hash_ = std::move(dummy).value();
    host.log(sdk::LogLevel::kInfo, "argon2id m=" + std::to_string(params_.memory_kib) +
                                       " KiB, t=" + std::to_string(params_.iterations) +
                                       ", p=" + std::to_string(params_.parallelism));
    return {};
  }

  // Proves libargon2 works with these parameters before the generation takes traffic.
  sdk::Status self_test() override {
    auto made = hash("self-test password", params_);
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
      auto ignored = verify(secret, dummy_hash_);
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
  std::string dummy_hash_;
};

}  // namespace
}  // namespace samokoder::auth_local

SAMOKODER_PLUGIN(samokoder::auth_local::LocalAuth, "auth.local", "1.0.0",
                 "Email and password sign-in: Argon2id password hashes and the password policy")

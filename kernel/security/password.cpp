#include "security/password.hpp"

#include <charconv>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>

#include <argon2.h>

#include "security/encoding.hpp"
#include "security/random.hpp"

namespace samokoder::security {
namespace {

// Made once with the default Argon2Params from 32 random bytes that were then thrown away; the
// DefaultDummyHashMatchesDefaultParams test keeps it in step with the defaults.
constexpr std::string_view kDefaultDummyHash =
    "$argon2id$v=19$m=19456,t=2,p=1$oeSA6/wPvDmk0xBajLy/Rg$DfTRrgnTTjgiSA/o/cjQHyfqZc7acNQwZFUmaX60lvM";

struct ParsedHash {
  std::uint32_t version = 0;
  Argon2Params params;
  std::size_t salt_bytes = 0;
  std::size_t hash_bytes = 0;
};

// Consumes `prefix` from the front of `text`.
bool consume(std::string_view& text, std::string_view prefix) {
  if (!text.starts_with(prefix)) return false;
  text.remove_prefix(prefix.size());
  return true;
}

// A decimal u32 without sign or leading zeros, ended by `stop` (or the end when stop is '\0').
std::optional<std::uint32_t> parse_u32(std::string_view& text, char stop) {
  const std::size_t end = stop == '\0' ? text.size() : text.find(stop);
  if (end == std::string_view::npos || end == 0 || end > 10) return std::nullopt;
  const std::string_view digits = text.substr(0, end);
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
  std::uint32_t value = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  text.remove_prefix(end);
  return value;
}

// Byte length of an unpadded standard-alphabet base64 field, or nullopt on a bad character/length.
std::optional<std::size_t> b64_field_bytes(std::string_view field) {
  if (field.empty() || field.size() % 4 == 1) return std::nullopt;
  for (const char c : field) {
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!ok) return std::nullopt;
  }
  return field.size() * 3 / 4;
}

std::optional<ParsedHash> parse_phc(std::string_view text) {
  ParsedHash out;
  if (!consume(text, "$argon2id$v=")) return std::nullopt;
  auto version = parse_u32(text, '$');
  if (!version || !consume(text, "$m=")) return std::nullopt;
  auto memory = parse_u32(text, ',');
  if (!memory || !consume(text, ",t=")) return std::nullopt;
  auto iterations = parse_u32(text, ',');
  if (!iterations || !consume(text, ",p=")) return std::nullopt;
  auto parallelism = parse_u32(text, '$');
  if (!parallelism || !consume(text, "$")) return std::nullopt;
  const std::size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) return std::nullopt;
  auto salt = b64_field_bytes(text.substr(0, dollar));
  auto hash = b64_field_bytes(text.substr(dollar + 1));
  if (!salt || !hash) return std::nullopt;
  out.version = *version;
  out.params = {*memory, *iterations, *parallelism};
  out.salt_bytes = *salt;
  out.hash_bytes = *hash;
  return out;
}

}  // namespace

sdk::Status validate_argon2_params(const Argon2Params& params) {
  if (params.parallelism < 1 || params.parallelism > kMaxArgon2Parallelism) {
    return sdk::Status::invalid_argument("argon2 parallelism must be 1.." +
                                         std::to_string(kMaxArgon2Parallelism));
  }
  if (params.iterations < 1 || params.iterations > kMaxArgon2Iterations) {
    return sdk::Status::invalid_argument("argon2 iterations must be 1.." +
                                         std::to_string(kMaxArgon2Iterations));
  }
  if (params.memory_kib < 8 * params.parallelism || params.memory_kib > kMaxArgon2MemoryKib) {
    return sdk::Status::invalid_argument("argon2 memory must be 8 KiB per lane .. " +
                                         std::to_string(kMaxArgon2MemoryKib) + " KiB");
  }
  return {};
}

sdk::Result<std::string> hash_password(std::string_view password, const Argon2Params& params) {
  SAMOKODER_RETURN_IF_ERROR(validate_argon2_params(params));
  if (password.size() > kMaxPasswordBytes) {
    return sdk::Status::invalid_argument("password is longer than " + std::to_string(kMaxPasswordBytes) +
                                         " bytes");
  }
  auto salt = random_bytes(kArgon2SaltBytes);
  if (!salt.ok()) return salt.status();
  std::string encoded(argon2_encodedlen(params.iterations, params.memory_kib, params.parallelism,
                                        kArgon2SaltBytes, kArgon2HashBytes, Argon2_id),
                      '\0');
  const int rc = argon2id_hash_encoded(params.iterations, params.memory_kib, params.parallelism,
                                       password.data(), password.size(), salt->data(), salt->size(),
                                       kArgon2HashBytes, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) {
    return sdk::Status::internal(std::string("argon2id hashing failed: ") + argon2_error_message(rc));
  }
  encoded.resize(encoded.find('\0'));
  return encoded;
}

sdk::Result<bool> verify_password(std::string_view password, std::string_view encoded) {
  const auto parsed = parse_phc(encoded);
  if (!parsed) return sdk::Status::data_loss("stored password hash is not an Argon2id PHC string");
  if (!validate_argon2_params(parsed->params).ok() || parsed->version != ARGON2_VERSION_13 ||
      parsed->salt_bytes < 8 || parsed->hash_bytes < 16 || parsed->hash_bytes > 64) {
    return sdk::Status::data_loss("stored password hash has parameters outside the accepted bounds");
  }
  if (password.size() > kMaxPasswordBytes) return false;
  const std::string encoded_z(encoded);  // libargon2 wants a NUL-terminated string
  const int rc = argon2id_verify(encoded_z.c_str(), password.data(), password.size());
  if (rc == ARGON2_OK) return true;
  if (rc == ARGON2_VERIFY_MISMATCH) return false;
  if (rc == ARGON2_MEMORY_ALLOCATION_ERROR) {
    return sdk::Status::resource_exhausted("argon2id verification could not allocate its memory");
  }
  return sdk::Status::data_loss(std::string("stored password hash was rejected by libargon2: ") +
                                argon2_error_message(rc));
}

bool needs_rehash(std::string_view encoded, const Argon2Params& params) {
  const auto parsed = parse_phc(encoded);
  return !parsed || parsed->version != ARGON2_VERSION_13 || parsed->params != params ||
         parsed->salt_bytes != kArgon2SaltBytes || parsed->hash_bytes != kArgon2HashBytes;
}

const std::string& dummy_hash(const Argon2Params& params) {
  static const std::string default_hash(kDefaultDummyHash);
  if (params == Argon2Params{}) return default_hash;
  static std::mutex mutex;
  static std::map<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t>, std::string> cache;
  const auto key = std::make_tuple(params.memory_kib, params.iterations, params.parallelism);
  std::lock_guard lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  auto secret = random_token(32);
  auto hashed = secret.ok() ? hash_password(*secret, params) : sdk::Result<std::string>(secret.status());
  // Invalid params or a failed DRBG leave the default hash: verification still fails, only the timing
  // match is lost, and hash_password would refuse those params for real accounts too.
  if (!hashed.ok()) return default_hash;
  return cache.emplace(key, std::move(hashed).value()).first->second;
}

sdk::Status check_password_policy(std::string_view password) {
  if (password.find('\0') != std::string_view::npos) {
    return sdk::Status::invalid_argument("password must not contain NUL characters");
  }
  const auto length = utf8_length(password);
  if (!length) return sdk::Status::invalid_argument("password must be valid UTF-8 text");
  if (*length < kMinPasswordLength) {
    return sdk::Status::invalid_argument("password must be at least " + std::to_string(kMinPasswordLength) +
                                         " characters long");
  }
  if (*length > kMaxPasswordLength) {
    return sdk::Status::invalid_argument("password must be at most " + std::to_string(kMaxPasswordLength) +
                                         " characters long");
  }
  if (is_common_password(password)) {
    return sdk::Status::invalid_argument(
        "password is one of the most commonly used passwords; choose a less predictable one");
  }
  return {};
}

}  // namespace samokoder::security

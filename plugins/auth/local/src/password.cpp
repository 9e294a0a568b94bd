#include "password.hpp"

#include <charconv>

#include <argon2.h>
#include <openssl/rand.h>

namespace samokoder::auth_local {
namespace {

struct Parsed {
  Argon2Params params;
  std::uint32_t version = 0;
  std::size_t salt_chars = 0;
  std::size_t hash_chars = 0;
};

bool consume(std::string_view& text, std::string_view prefix) {
  if (!text.starts_with(prefix)) return false;
  text.remove_prefix(prefix.size());
  return true;
}

// A decimal without sign or leading zeros, ended by `stop`.
std::optional<std::uint32_t> number(std::string_view& text, char stop) {
  const auto end = text.find(stop);
  if (end == std::string_view::npos || end == 0 || end > 10) return std::nullopt;
  const std::string_view digits = text.substr(0, end);
  if (digits.size() > 1 && digits.front() == '0') return std::nullopt;
  std::uint32_t value = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  text.remove_prefix(end);
  return value;
}

bool is_b64_field(std::string_view field) {
  if (field.empty() || field.size() % 4 == 1) return false;
  for (const char c : field) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
      return false;
  }
  return true;
}

std::optional<Parsed> parse(std::string_view text) {
  Parsed out;
  if (!consume(text, "$argon2id$v=")) return std::nullopt;
  const auto version = number(text, '$');
  if (!version || !consume(text, "$m=")) return std::nullopt;
  const auto memory = number(text, ',');
  if (!memory || !consume(text, ",t=")) return std::nullopt;
  const auto iterations = number(text, ',');
  if (!iterations || !consume(text, ",p=")) return std::nullopt;
  const auto parallelism = number(text, '$');
  if (!parallelism || !consume(text, "$")) return std::nullopt;
  const auto dollar = text.find('$');
  if (dollar == std::string_view::npos) return std::nullopt;
  const std::string_view salt = text.substr(0, dollar);
  const std::string_view digest = text.substr(dollar + 1);
  if (!is_b64_field(salt) || !is_b64_field(digest)) return std::nullopt;
  out.params = {*memory, *iterations, *parallelism};
  out.version = *version;
  out.salt_chars = salt.size();
  out.hash_chars = digest.size();
  return out;
}

sdk::Status check_bounds(const Argon2Params& p) {
  if (p.parallelism < 1 || p.parallelism > kMaxParallelism) {
    return sdk::Status::invalid_argument("parallelism must be 1.." + std::to_string(kMaxParallelism));
  }
  if (p.iterations < 1 || p.iterations > kMaxIterations) {
    return sdk::Status::invalid_argument("iterations must be 1.." + std::to_string(kMaxIterations));
  }
  if (p.memory_kib < 8 * p.parallelism || p.memory_kib > kMaxMemoryKib) {
    return sdk::Status::invalid_argument("memory_kib must be 8 per lane.." + std::to_string(kMaxMemoryKib));
  }
  return {};
}

// Base64 without padding, as PHC strings write salts and digests.
std::string unpadded_base64(const unsigned char* bytes, std::size_t size) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < size; ++i) {
    buffer = (buffer << 8) | bytes[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(buffer >> bits) & 0x3F];
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 0x3F];
  return out;
}

// Number of code points of well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF).
std::optional<std::size_t> utf8_length(std::string_view text) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < text.size(); ++count) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      cp = c;
    } else if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return std::nullopt;
    }
    if (i + extra >= text.size()) return std::nullopt;  // truncated sequence
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((extra == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return std::nullopt;
    }
    i += extra + 1;
  }
  return count;
}

}  // namespace

sdk::Result<Argon2Params> parse_params(const nlohmann::json& config) {
  Argon2Params params;
  if (!config.is_object()) return sdk::Status::invalid_argument("config: expected an object");
  for (const auto& [key, value] : config.items()) {
    std::uint32_t* field = nullptr;
    if (key == "memory_kib") field = &params.memory_kib;
    if (key == "iterations") field = &params.iterations;
    if (key == "parallelism") field = &params.parallelism;
    if (field == nullptr) {
      return sdk::Status::invalid_argument("config/" + key +
                                           ": unknown key (known keys: memory_kib, iterations, parallelism)");
    }
    if (!value.is_number_integer() || value.get<std::int64_t>() < 1 ||
        value.get<std::int64_t>() > 0xFFFFFFFF) {
      return sdk::Status::invalid_argument("config/" + key + ": expected a positive integer");
    }
    *field = static_cast<std::uint32_t>(value.get<std::int64_t>());
  }
  if (auto bounds = check_bounds(params); !bounds.ok()) {
    return sdk::Status::invalid_argument("config: " + bounds.message());
  }
  return params;
}

sdk::Result<std::string> hash(std::string_view secret, const Argon2Params& params) {
  SAMOKODER_RETURN_IF_ERROR(check_bounds(params));
  if (secret.size() > kMaxSecretBytes) return sdk::Status::invalid_argument("the password is too long");
  unsigned char salt[kSaltBytes];
  if (RAND_bytes(salt, sizeof salt) != 1) return sdk::Status::internal("no random bytes for a salt");
  std::string encoded(argon2_encodedlen(params.iterations, params.memory_kib, params.parallelism, kSaltBytes,
                                        kHashBytes, Argon2_id),
                      '\0');
  const int rc =
      argon2id_hash_encoded(params.iterations, params.memory_kib, params.parallelism, secret.data(),
                            secret.size(), salt, sizeof salt, kHashBytes, encoded.data(), encoded.size());
  if (rc != ARGON2_OK)
    return sdk::Status::internal(std::string("argon2id failed: ") + argon2_error_message(rc));
  encoded.resize(encoded.find('\0'));
  return encoded;
}

sdk::Result<std::string> decoy_hash(const Argon2Params& params) {
  SAMOKODER_RETURN_IF_ERROR(check_bounds(params));
  unsigned char salt[kSaltBytes];
  unsigned char digest[kHashBytes];
  if (RAND_bytes(salt, sizeof salt) != 1 || RAND_bytes(digest, sizeof digest) != 1)
    return sdk::Status::internal("no random bytes for a decoy hash");
  return "$argon2id$v=" + std::to_string(ARGON2_VERSION_13) + "$m=" + std::to_string(params.memory_kib) +
         ",t=" + std::to_string(params.iterations) + ",p=" + std::to_string(params.parallelism) + "$" +
         unpadded_base64(salt, sizeof salt) + "$" + unpadded_base64(digest, sizeof digest);
}

sdk::Result<bool> verify(std::string_view secret, std::string_view encoded) {
  const auto parsed = parse(encoded);
  if (!parsed || !check_bounds(parsed->params).ok() || parsed->version != ARGON2_VERSION_13 ||
      parsed->salt_chars < 11 || parsed->hash_chars < 22 || parsed->hash_chars > 86) {
    return sdk::Status::data_loss("the stored password hash is not an Argon2id hash within accepted bounds");
  }
  if (secret.size() > kMaxSecretBytes) return false;
  const std::string terminated(encoded);
  const int rc = argon2id_verify(terminated.c_str(), secret.data(), secret.size());
  if (rc == ARGON2_OK) return true;
  if (rc == ARGON2_VERIFY_MISMATCH) return false;
  if (rc == ARGON2_MEMORY_ALLOCATION_ERROR)
    return sdk::Status::resource_exhausted("argon2id could not allocate");
  return sdk::Status::data_loss(std::string("the stored password hash was rejected: ") +
                                argon2_error_message(rc));
}

std::optional<Argon2Params> params_of(std::string_view encoded) {
  const auto parsed = parse(encoded);
  if (!parsed || parsed->version != ARGON2_VERSION_13) return std::nullopt;
  return parsed->params;
}

sdk::Status check_policy(std::string_view secret) {
  if (secret.find('\0') != std::string_view::npos) {
    return sdk::Status::invalid_argument("the password must not contain NUL characters");
  }
  const auto length = utf8_length(secret);
  if (!length) return sdk::Status::invalid_argument("the password must be valid UTF-8");
  if (*length < kMinPasswordLength || *length > kMaxPasswordLength) {
    return sdk::Status::invalid_argument("the password must be " + std::to_string(kMinPasswordLength) +
                                         " to " + std::to_string(kMaxPasswordLength) + " characters long");
  }
  if (is_common_password(secret)) {
    return sdk::Status::invalid_argument(
        "this password is too common; choose another (a few unrelated words work well)");
  }
  return {};
}

}  // namespace samokoder::auth_local

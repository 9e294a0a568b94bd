#include "security/random.hpp"

#include <limits>

#include <openssl/rand.h>

#include "security/encoding.hpp"

namespace samokoder::security {

sdk::Result<std::string> random_bytes(std::size_t n) {
  if (n > kMaxRandomBytes) {
    return sdk::Status::invalid_argument("random_bytes: asked for " + std::to_string(n) +
                                         " bytes, the limit is " + std::to_string(kMaxRandomBytes));
  }
  std::string out(n, '\0');
  if (n == 0) return out;
  static_assert(kMaxRandomBytes <= static_cast<std::size_t>(std::numeric_limits<int>::max()));
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return sdk::Status::internal("random_bytes: the OpenSSL DRBG failed to produce random bytes");
  }
  return out;
}

sdk::Result<std::string> random_token(std::size_t bytes) {
  if (bytes < 16) {
    return sdk::Status::invalid_argument("random_token: at least 16 bytes are needed, got " +
                                         std::to_string(bytes));
  }
  auto raw = random_bytes(bytes);
  if (!raw.ok()) return raw.status();
  return base64url_encode(*raw);
}

sdk::Result<std::string> random_hex_id(std::size_t bytes) {
  if (bytes < 8) {
    return sdk::Status::invalid_argument("random_hex_id: at least 8 bytes are needed, got " +
                                         std::to_string(bytes));
  }
  auto raw = random_bytes(bytes);
  if (!raw.ok()) return raw.status();
  return hex_encode(*raw);
}

}  // namespace samokoder::security

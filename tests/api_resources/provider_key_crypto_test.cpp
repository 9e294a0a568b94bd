#include "api/provider_key_crypto.hpp"

#include <vector>

#include <gtest/gtest.h>

#include "api/content_type.hpp"

namespace samokoder::api {
namespace {

security::KeyRing make_ring(std::string_view master, std::string id = "k1") {
  security::KeyRing ring;
  auto key = security::derive_key(master, security::kAeadKeyLabel);
  EXPECT_TRUE(key.ok());
  EXPECT_TRUE(ring.add(std::move(id), *key).ok());
  return ring;
}

sdk::ProviderKey as_row(const sdk::NewProviderKey& key) {
  sdk::ProviderKey row;
  row.user_id = key.user_id;
  row.provider = key.provider;
  row.key_id = key.key_id;
  row.ciphertext = key.ciphertext;
  row.nonce = key.nonce;
  row.masked_hint = key.masked_hint;
  return row;
}

constexpr std::string_view kSecret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";

TEST(ProviderKeyCrypto, SealsOpensAndMasks) {
  const auto ring = make_ring("a master secret that is long enough for tests");
  auto sealed = seal_provider_key(ring, "user-a", "openai", kSecret);
  ASSERT_TRUE(sealed.ok()) << sealed.status().to_string();
  EXPECT_EQ(sealed->key_id, "k1");
  EXPECT_EQ(sealed->nonce.size(), security::kAeadNonceBytes);
  EXPECT_EQ(sealed->ciphertext.size(), kSecret.size() + security::kAeadTagBytes);
  EXPECT_EQ(sealed->ciphertext.find(kSecret), std::string::npos);
  EXPECT_EQ(sealed->masked_hint, "sk-…6789");
  auto opened = open_provider_key(ring, as_row(*sealed));
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  EXPECT_EQ(*opened, kSecret);
}

TEST(ProviderKeyCrypto, ARowMovedToAnotherUserOrProviderDoesNotOpen) {
  const auto ring = make_ring("a master secret that is long enough for tests");
  auto sealed = seal_provider_key(ring, "user-a", "openai", kSecret);
  ASSERT_TRUE(sealed.ok());
  sdk::ProviderKey moved = as_row(*sealed);
  moved.user_id = "user-b";
  EXPECT_EQ(open_provider_key(ring, moved).status().code(), sdk::StatusCode::kDataLoss);
  sdk::ProviderKey renamed = as_row(*sealed);
  renamed.provider = "anthropic";
  EXPECT_EQ(open_provider_key(ring, renamed).status().code(), sdk::StatusCode::kDataLoss);
  sdk::ProviderKey flipped = as_row(*sealed);
  flipped.ciphertext[0] = static_cast<char>(flipped.ciphertext[0] ^ 1);
  EXPECT_EQ(open_provider_key(ring, flipped).status().code(), sdk::StatusCode::kDataLoss);
  sdk::ProviderKey truncated = as_row(*sealed);
  truncated.ciphertext.resize(4);
  EXPECT_EQ(open_provider_key(ring, truncated).status().code(), sdk::StatusCode::kDataLoss);
}

TEST(ProviderKeyCrypto, AnotherMasterSecretOrARetiredKeyIdCannotOpen) {
  const auto ring = make_ring("a master secret that is long enough for tests");
  auto sealed = seal_provider_key(ring, "user-a", "openai", kSecret);
  ASSERT_TRUE(sealed.ok());
  const auto other = make_ring("a different master secret of similar length");
  EXPECT_EQ(open_provider_key(other, as_row(*sealed)).status().code(), sdk::StatusCode::kDataLoss);
  const auto rotated = make_ring("a master secret that is long enough for tests", "k2");
  EXPECT_EQ(open_provider_key(rotated, as_row(*sealed)).status().code(),
            sdk::StatusCode::kFailedPrecondition);
}

TEST(ProviderKeyCrypto, ValidatesProviderNamesAndSecrets) {
  for (const std::string_view good : std::vector<std::string_view>{
           "openai", "a", "open-router_2", std::string_view("abcdefghijklmnopqrstuvwxyz012345")})
    EXPECT_TRUE(valid_provider_name(good)) << good;
  for (const std::string_view bad :
       std::vector<std::string_view>{"", "OpenAI", "open ai", "../x", "a/b", "a.b", "é",
                                     std::string_view("abcdefghijklmnopqrstuvwxyz0123456")})
    EXPECT_FALSE(valid_provider_name(bad)) << bad;
  const auto ring = make_ring("a master secret that is long enough for tests");
  EXPECT_EQ(seal_provider_key(ring, "u", "Bad", kSecret).status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(seal_provider_key(ring, "u", "openai", "").status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(seal_provider_key(ring, "u", "openai", "has space").status().code(),
            sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      seal_provider_key(ring, "u", "openai", std::string(kMaxProviderKeyBytes + 1, 'k')).status().code(),
      sdk::StatusCode::kInvalidArgument);
  EXPECT_TRUE(seal_provider_key(ring, "u", "openai", std::string(kMaxProviderKeyBytes, 'k')).ok());
}

TEST(ContentType, FromExtensionAndBytes) {
  EXPECT_EQ(content_type_for("index.html", "<p>"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("src/App.JS", "x"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("package.json", "{}"), "application/json; charset=utf-8");
  EXPECT_EQ(content_type_for("logo.png", std::string("\x89PNG\0", 5)), "image/png");
  EXPECT_EQ(content_type_for("Makefile", "all:\n"), "text/plain; charset=utf-8");
  EXPECT_EQ(content_type_for(".gitignore", "node_modules\n"), "text/plain; charset=utf-8");
  EXPECT_EQ(content_type_for("blob", std::string("\0\1", 2)), "application/octet-stream");
  EXPECT_EQ(content_type_for("latin1.txt", "caf\xe9"), "text/plain");
}

}  // namespace
}  // namespace samokoder::api

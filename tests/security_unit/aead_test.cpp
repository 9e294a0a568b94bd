#include "security/aead.hpp"

#include <string>

#include <gtest/gtest.h>

#include "security/encoding.hpp"

namespace samokoder::security {
namespace {

const std::string kKey1(32, '\x11');
const std::string kKey2(32, '\x22');

KeyRing ring_with_key1() {
  KeyRing ring;
  EXPECT_TRUE(ring.add("k1", kKey1).ok());
  return ring;
}

// RFC 5869 appendix A.1 (test case 1) and A.3 (test case 3: no salt, no info).
TEST(Hkdf, MatchesRfc5869Vectors) {
  auto okm = hkdf_sha256(std::string(22, '\x0b'), hex_decode("000102030405060708090a0b0c").value(),
                         hex_decode("f0f1f2f3f4f5f6f7f8f9").value(), 42);
  ASSERT_TRUE(okm.ok()) << okm.status().to_string();
  EXPECT_EQ(hex_encode(*okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  auto okm3 = hkdf_sha256(std::string(22, '\x0b'), "", "", 42);
  ASSERT_TRUE(okm3.ok()) << okm3.status().to_string();
  EXPECT_EQ(hex_encode(*okm3),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
  EXPECT_FALSE(hkdf_sha256("ikm", "", "", 0).ok());
  EXPECT_FALSE(hkdf_sha256("ikm", "", "", 255 * 32 + 1).ok());
}

TEST(Hkdf, DerivedKeysAreSeparatedByLabelAndDeterministic) {
  const std::string master = "q8Jr3v0NkZ1pXc7LwT4mYb9HsD2fGe6A";
  auto jwt = derive_key(master, kJwtKeyLabel);
  auto aead = derive_key(master, kAeadKeyLabel);
  ASSERT_TRUE(jwt.ok() && aead.ok());
  EXPECT_EQ(jwt->size(), 32U);
  EXPECT_NE(*jwt, *aead);
  EXPECT_EQ(*jwt, derive_key(master, kJwtKeyLabel).value());
  EXPECT_NE(*jwt, derive_key(master + "x", kJwtKeyLabel).value());
  EXPECT_FALSE(derive_key("", kJwtKeyLabel).ok());
  EXPECT_FALSE(derive_key(master, "").ok());
}

TEST(KeyId, IsShortStableAndKeySpecific) {
  EXPECT_EQ(key_id_for(kKey1).size(), 12U);
  EXPECT_EQ(key_id_for(kKey1), key_id_for(kKey1));
  EXPECT_NE(key_id_for(kKey1), key_id_for(kKey2));
  KeyRing ring;
  EXPECT_TRUE(ring.add(key_id_for(kKey1), kKey1).ok());
}

TEST(AssociatedData, IsUnambiguous) {
  EXPECT_NE(make_associated_data({"ab", "c"}), make_associated_data({"a", "bc"}));
  EXPECT_NE(make_associated_data({"user:1", "provider:x"}), make_associated_data({"user:1provider:x"}));
}

TEST(Aead, SealOpenRoundTrip) {
  const KeyRing ring = ring_with_key1();
  const std::string ad = make_associated_data({"user:42", "provider:openai"});
  for (const std::string& plaintext :
       {std::string(), std::string("sk-abcdefghijklmnop"), std::string(100000, 'z')}) {
    auto sealed = ring.seal(plaintext, ad);
    ASSERT_TRUE(sealed.ok()) << sealed.status().to_string();
    EXPECT_EQ(sealed->key_id, "k1");
    EXPECT_EQ(sealed->nonce.size(), kAeadNonceBytes);
    EXPECT_EQ(sealed->tag.size(), kAeadTagBytes);
    EXPECT_EQ(sealed->ciphertext.size(), plaintext.size());
    if (!plaintext.empty()) {
      EXPECT_NE(sealed->ciphertext, plaintext);
    }
    auto opened = ring.open(*sealed, ad);
    ASSERT_TRUE(opened.ok()) << opened.status().to_string();
    EXPECT_EQ(*opened, plaintext);
  }
}

TEST(Aead, FreshNonceEverySeal) {
  const KeyRing ring = ring_with_key1();
  auto a = ring.seal("same", "ad");
  auto b = ring.seal("same", "ad");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->nonce, b->nonce);
  EXPECT_NE(a->ciphertext, b->ciphertext);
}

TEST(Aead, TamperingWithAnyPartFails) {
  const KeyRing ring = ring_with_key1();
  const Sealed sealed = ring.seal("provider secret value", "ad").value();
  auto expect_rejected = [&](const Sealed& s, const std::string& what) {
    auto opened = ring.open(s, "ad");
    EXPECT_EQ(opened.status().code(), sdk::StatusCode::kDataLoss) << what;
    if (!opened.ok()) {
      EXPECT_EQ(opened.status().message().find("provider secret"), std::string::npos);
    }
  };
  for (std::size_t i = 0; i < sealed.ciphertext.size(); ++i) {
    Sealed s = sealed;
    s.ciphertext[i] = static_cast<char>(s.ciphertext[i] ^ 0x80);
    expect_rejected(s, "ciphertext byte " + std::to_string(i));
  }
  for (std::size_t i = 0; i < sealed.nonce.size(); ++i) {
    Sealed s = sealed;
    s.nonce[i] = static_cast<char>(s.nonce[i] ^ 0x01);
    expect_rejected(s, "nonce byte " + std::to_string(i));
  }
  for (std::size_t i = 0; i < sealed.tag.size(); ++i) {
    Sealed s = sealed;
    s.tag[i] = static_cast<char>(s.tag[i] ^ 0x01);
    expect_rejected(s, "tag byte " + std::to_string(i));
  }
  Sealed truncated = sealed;
  truncated.ciphertext.pop_back();
  expect_rejected(truncated, "truncated ciphertext");
  Sealed extended = sealed;
  extended.ciphertext += 'x';
  expect_rejected(extended, "extended ciphertext");
  Sealed short_tag = sealed;
  short_tag.tag.pop_back();
  expect_rejected(short_tag, "short tag");
}

TEST(Aead, WrongAssociatedDataFails) {
  const KeyRing ring = ring_with_key1();
  const std::string alice = make_associated_data({"user:1", "provider:openai"});
  const std::string bob = make_associated_data({"user:2", "provider:openai"});
  const std::string other_provider = make_associated_data({"user:1", "provider:anthropic"});
  const Sealed sealed = ring.seal("sk-alice", alice).value();
  EXPECT_TRUE(ring.open(sealed, alice).ok());
  EXPECT_EQ(ring.open(sealed, bob).status().code(), sdk::StatusCode::kDataLoss);
  EXPECT_EQ(ring.open(sealed, other_provider).status().code(), sdk::StatusCode::kDataLoss);
  EXPECT_FALSE(ring.open(sealed, "").ok());
}

TEST(Aead, RotationOpensOldValuesAndSealsWithTheCurrentKey) {
  KeyRing ring = ring_with_key1();
  const std::string old_text = ring.seal_to_string("old secret", "ad").value();
  ASSERT_TRUE(ring.add("k2", kKey2).ok());
  ASSERT_TRUE(ring.set_current("k2").ok());
  const std::string new_text = ring.seal_to_string("new secret", "ad").value();
  EXPECT_TRUE(old_text.starts_with("v1.k1."));
  EXPECT_TRUE(new_text.starts_with("v1.k2."));
  EXPECT_EQ(ring.open_string(old_text, "ad").value(), "old secret");
  EXPECT_EQ(ring.open_string(new_text, "ad").value(), "new secret");

  // A ring that never had k1 cannot open the old value, and says why.
  KeyRing only_new;
  ASSERT_TRUE(only_new.add("k2", kKey2).ok());
  EXPECT_EQ(only_new.open_string(old_text, "ad").status().code(), sdk::StatusCode::kFailedPrecondition);
}

TEST(Aead, RelabellingTheKeyIdFails) {
  // Both keys are equal, so only the authenticated key id tells the values apart.
  KeyRing ring;
  ASSERT_TRUE(ring.add("k1", kKey1).ok());
  ASSERT_TRUE(ring.add("k2", kKey1).ok());
  Sealed sealed = ring.seal("value", "ad").value();
  sealed.key_id = "k2";
  EXPECT_EQ(ring.open(sealed, "ad").status().code(), sdk::StatusCode::kDataLoss);
}

TEST(Aead, SerializationRoundTripsAndRejectsMalformedText) {
  const KeyRing ring = ring_with_key1();
  const Sealed sealed = ring.seal("value", "ad").value();
  const std::string text = serialize_sealed(sealed);
  EXPECT_EQ(text.substr(0, 6), "v1.k1.");
  auto parsed = parse_sealed(text);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, sealed);
  const std::string nonce = base64url_encode(sealed.nonce);
  const std::string body = base64url_encode(sealed.ciphertext + sealed.tag);
  for (const std::string& bad :
       {std::string(), std::string("v1"), "v2.k1." + nonce + "." + body, "v1.k1." + nonce,
        "v1.k1." + nonce + "." + body + ".x", std::string("v1.."), "v1.k.1." + nonce + "." + body,
        "v1.k1." + nonce + "A." + body, "v1.k1." + nonce + ".AAAA", "v1.k1." + nonce + "=." + body,
        "v1.bad id." + nonce + "." + body}) {
    EXPECT_EQ(parse_sealed(bad).status().code(), sdk::StatusCode::kDataLoss) << bad;
  }
}

TEST(Aead, KeyRingValidatesKeysAndState) {
  KeyRing ring;
  EXPECT_EQ(ring.seal("x", "ad").status().code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ring.add("k1", std::string(16, 'x')).code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(ring.add("k.1", kKey1).code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(ring.add(std::string(33, 'k'), kKey1).code(), sdk::StatusCode::kInvalidArgument);
  ASSERT_TRUE(ring.add("k1", kKey1).ok());
  EXPECT_EQ(ring.add("k1", kKey2).code(), sdk::StatusCode::kAlreadyExists);
  EXPECT_EQ(ring.set_current("k9").code(), sdk::StatusCode::kNotFound);
  EXPECT_EQ(ring.current_key_id(), "k1");
  EXPECT_EQ(ring.seal(std::string(kMaxSealedPlaintextBytes + 1, 'x'), "ad").status().code(),
            sdk::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samokoder::security

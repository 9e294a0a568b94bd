// Provider keys over HTTP: stored encrypted (the database file never holds the key), shown masked,
// never logged, audited, and bound to their owner so a copied row does not decrypt.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <fcntl.h>
#include <unistd.h>

#include <samokoder/sdk/storage.hpp>

#include "api/provider_key_crypto.hpp"
#include "core/logging.hpp"
#include "resources_fixture.hpp"
#include "security/aead.hpp"

namespace samokoder::resources_test {
namespace {

namespace fs = std::filesystem;
using boost::beast::http::verb;

constexpr std::string_view kSecret = "sk-proj-Q7v9Lr2mXw4Tz8Kp1Nc6Hb3Js5Fd0Ga";

// Every byte SQLite has written for the database: the main file, its WAL and shared memory.
std::string database_bytes(const fs::path& db) {
  std::string all;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const fs::path file = db.string() + suffix;
    if (fs::exists(file)) all += file_bytes(file);
  }
  return all;
}

// Sends stderr (where the kernel logs) to a file while alive.
class StderrCapture {
 public:
  explicit StderrCapture(const fs::path& file) : file_(file) {
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  std::string finish() {
    core::flush_logging();
    restore();
    return file_bytes(file_);
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  fs::path file_;
  int saved_ = -1;
};

class KeysApiTest : public ResourcesApiTest {
 protected:
  // The ring the kernel derives from SAMOKODER_SECRET_KEY (api-context: derive_key + key_id_for).
  security::KeyRing kernel_ring() const {
    security::KeyRing ring;
    auto key = security::derive_key(secret_key(), security::kAeadKeyLabel);
    EXPECT_TRUE(key.ok());
    const std::string id = security::key_id_for(*key);
    EXPECT_TRUE(ring.add(id, *key).ok());
    return ring;
  }
};

TEST_F(KeysApiTest, StoredEncryptedShownMaskedAndNeverLogged) {
  config::LogConfig verbose;
  verbose.level = "trace";
  core::init_logging(verbose);
  StderrCapture capture(dir() / "stderr.log");

  const User alice = sign_up("alice@example.com");
  const std::string body = nlohmann::json{{"api_key", kSecret}}.dump();
  const auto stored = call(verb::put, "/api/v1/keys/openai", alice, body);
  ASSERT_EQ(stored.status, 200u) << stored.body;
  EXPECT_EQ(stored.json()["provider"], "openai");
  EXPECT_EQ(stored.json()["masked_key"], "sk-…d0Ga");
  EXPECT_EQ(stored.body.find(kSecret), std::string::npos);

  const auto one = get("/api/v1/keys/openai", alice);
  ASSERT_EQ(one.status, 200u);
  EXPECT_EQ(one.json()["masked_key"], "sk-…d0Ga");
  EXPECT_EQ(one.body.find(kSecret), std::string::npos);
  const auto list = get("/api/v1/keys", alice);
  ASSERT_EQ(list.json()["items"].size(), 1u);
  EXPECT_EQ(list.json()["items"][0]["provider"], "openai");
  EXPECT_EQ(list.body.find(kSecret), std::string::npos);
  // A validation failure must not echo the key either.
  const auto refused = call(verb::put, "/api/v1/keys/openai", alice,
                            nlohmann::json{{"api_key", std::string(kSecret) + " with space"}}.dump());
  EXPECT_EQ(refused.status, 400u);
  EXPECT_EQ(refused.body.find(kSecret), std::string::npos);

  const std::string logs = capture.finish();
  core::init_logging(config::LogConfig{});
  EXPECT_EQ(logs.find(kSecret), std::string::npos) << logs;

  // The database holds the sealed form only.
  auto row =
      with_storage([&](sdk::Storage& s) { return s.provider_keys().get_provider_key(alice.id, "openai"); });
  ASSERT_TRUE(row.ok()) << row.status().to_string();
  EXPECT_EQ(row->ciphertext.find(kSecret), std::string::npos);
  EXPECT_EQ(row->masked_hint, "sk-…d0Ga");
  EXPECT_FALSE(row->key_id.empty());
  const std::string bytes = database_bytes(database());
  ASSERT_FALSE(bytes.empty());
  EXPECT_EQ(bytes.find(kSecret), std::string::npos);
  EXPECT_EQ(bytes.find(kSecret.substr(8, 16)), std::string::npos);  // not even a fragment
  // ... and it opens back to the key with the kernel's ring.
  auto opened = api::open_provider_key(kernel_ring(), *row);
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  EXPECT_EQ(*opened, kSecret);
}

TEST_F(KeysApiTest, ARowCopiedToAnotherUserDoesNotDecrypt) {
  const User alice = sign_up("alice@example.com");
  const User mallory = sign_up("mallory@example.com");
  ASSERT_EQ(call(verb::put, "/api/v1/keys/openai", alice, nlohmann::json{{"api_key", kSecret}}.dump()).status,
            200u);
  auto row =
      with_storage([&](sdk::Storage& s) { return s.provider_keys().get_provider_key(alice.id, "openai"); });
  ASSERT_TRUE(row.ok());

  // Someone with database access copies Alice's sealed key into Mallory's row.
  sdk::NewProviderKey copy;
  copy.user_id = mallory.id;
  copy.provider = "openai";
  copy.key_id = row->key_id;
  copy.ciphertext = row->ciphertext;
  copy.nonce = row->nonce;
  copy.masked_hint = row->masked_hint;
  auto planted = with_storage([&](sdk::Storage& s) { return s.provider_keys().put_provider_key(copy); });
  ASSERT_TRUE(planted.ok());
  const auto ring = kernel_ring();
  EXPECT_TRUE(api::open_provider_key(ring, *row).ok());
  EXPECT_EQ(api::open_provider_key(ring, *planted).status().code(), sdk::StatusCode::kDataLoss);
  // Relabelled to another provider of Alice's own, it fails too.
  copy.user_id = alice.id;
  copy.provider = "anthropic";
  auto relabelled = with_storage([&](sdk::Storage& s) { return s.provider_keys().put_provider_key(copy); });
  ASSERT_TRUE(relabelled.ok());
  EXPECT_EQ(api::open_provider_key(ring, *relabelled).status().code(), sdk::StatusCode::kDataLoss);
}

TEST_F(KeysApiTest, ReplaceDeleteAndAudit) {
  const User alice = sign_up("alice@example.com");
  ASSERT_EQ(
      call(verb::put, "/api/v1/keys/anthropic", alice, R"({"api_key": "sk-ant-first-key-0000000000001111"})")
          .status,
      200u);
  clock_.advance(std::chrono::seconds(5));
  const auto replaced =
      call(verb::put, "/api/v1/keys/anthropic", alice, R"({"api_key": "sk-ant-second-key-000000000002222"})");
  ASSERT_EQ(replaced.status, 200u);
  EXPECT_EQ(replaced.json()["masked_key"], "sk-…2222");
  EXPECT_NE(replaced.json()["created_at"], replaced.json()["updated_at"]);
  EXPECT_EQ(call(verb::delete_, "/api/v1/keys/anthropic", alice).status, 204u);
  EXPECT_EQ(get("/api/v1/keys/anthropic", alice).status, 404u);
  EXPECT_EQ(call(verb::delete_, "/api/v1/keys/anthropic", alice).status, 404u);

  for (const auto& [action, expected] :
       std::vector<std::pair<std::string, std::size_t>>{{"key.set", 2}, {"key.deleted", 1}}) {
    sdk::AuditFilter filter;
    filter.action = action;
    filter.actor_id = alice.id;
    auto events = with_storage(
        [&](sdk::Storage& s) { return s.audit().list_audit_events(filter, sdk::PageRequest{}); });
    ASSERT_TRUE(events.ok());
    ASSERT_EQ(events->items.size(), expected) << action;
    EXPECT_EQ(events->items[0].target, "anthropic");
    EXPECT_EQ(events->items[0].detail["provider"], "anthropic");
    EXPECT_EQ(events->items[0].detail.dump().find("second-key"), std::string::npos);
  }
}

TEST_F(KeysApiTest, InputIsValidated) {
  const User alice = sign_up("alice@example.com");
  for (const std::string& provider :
       std::vector<std::string>{"OpenAI", "open.ai", "a%2fb", "%2e%2e", std::string(33, 'p'), "a%20b"}) {
    const auto response =
        call(verb::put, "/api/v1/keys/" + provider, alice, R"({"api_key": "sk-0123456789abcdef"})");
    EXPECT_EQ(response.status, 400u) << provider;
    EXPECT_EQ(get("/api/v1/keys/" + provider, alice).status, 400u) << provider;
    EXPECT_EQ(call(verb::delete_, "/api/v1/keys/" + provider, alice).status, 400u) << provider;
  }
  for (const std::string body :
       {R"({})", R"({"api_key": ""})", R"({"api_key": 42})", R"({"api_key": "has space"})",
        R"({"api_key": "k", "extra": 1})", R"({"api_key": "tab\there"})"}) {
    const auto response = call(verb::put, "/api/v1/keys/openai", alice, body);
    EXPECT_EQ(response.status, 400u) << body;
    EXPECT_EQ(response.json()["type"], "https://samokoder.dev/problems/validation_failed") << body;
  }
  EXPECT_EQ(call(verb::put, "/api/v1/keys/openai", alice, R"({"api_key": "k"})", "text/plain").status, 415u);
  EXPECT_EQ(call(verb::put, "/api/v1/keys/openai", alice,
                 nlohmann::json{{"api_key", std::string(5000, 'k')}}.dump())
                .status,
            400u);
  EXPECT_TRUE(get("/api/v1/keys", alice).json()["items"].empty());
}

}  // namespace
}  // namespace samokoder::resources_test

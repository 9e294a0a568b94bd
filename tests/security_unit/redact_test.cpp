#include <string>

#include <gtest/gtest.h>

#include <samokoder/sdk/redact.hpp>

namespace samokoder::sdk {
namespace {

TEST(RedactCredentials, HidesTheUserinfoPasswordOfEveryUrl) {
  EXPECT_EQ(redact_credentials("postgres://user:S3cretPw@db:5432/app"), "postgres://user:***@db:5432/app");
  EXPECT_EQ(redact_credentials("a postgresql://u:p1@h/d and https://x:p2@y/z?q=1"),
            "a postgresql://u:***@h/d and https://x:***@y/z?q=1");
  // Malformed: an unclosed IPv6 bracket, a password holding '@' and '/', the URL quoted by libpq.
  EXPECT_EQ(redact_credentials(R"(in URI: "postgres://user:S3cretPw@[::1/db")"),
            R"(in URI: "postgres://user:***@[::1/db")");
  EXPECT_EQ(redact_credentials("postgres://u:pa@s/s@host/db"), "postgres://u:***@host/db");
}

TEST(RedactCredentials, LeavesUrlsWithoutAPasswordAlone) {
  for (const char* text : {"postgres://user@db/app", "http://127.0.0.1:8080/healthz", "postgres://db/app",
                           "no URL here", "postgres://user:@db/app"}) {
    EXPECT_EQ(redact_credentials(text), text);
  }
}

TEST(RedactCredentials, HidesPasswordKeysOfConninfoStringsAndQueries) {
  EXPECT_EQ(redact_credentials("host=db password=S3cretPw port=x"), "host=db password=*** port=x");
  EXPECT_EQ(redact_credentials("host=db PASSWORD = 'S3cret \\' Pw' port=x"), "host=db PASSWORD = *** port=x");
  EXPECT_EQ(redact_credentials("host=db password='S3cret Pw"), "host=db password=***");
  EXPECT_EQ(redact_credentials("postgres://db/app?sslmode=require&password=S3cretPw&x=1"),
            "postgres://db/app?sslmode=require&password=***&x=1");
  EXPECT_EQ(redact_credentials(R"(parameter: "password=S3cretPw")"), R"(parameter: "password=***")");
  EXPECT_EQ(redact_credentials("the password is wrong"), "the password is wrong");
}

TEST(RedactCredentials, HidesFragmentsOfAKnownConninfoQuotedOnTheirOwn) {
  const std::string url = "postgres://user:S3cret%zzPw@db/app";
  EXPECT_EQ(redact_credentials(R"(invalid percent-encoded token: "S3cret%zzPw")", url),
            R"(invalid percent-encoded token: "***")");
  EXPECT_EQ(redact_credentials("auth failed for S3cret\x01Pw", "postgres://u:S3cret%01Pw@db/app"),
            "auth failed for ***");
  EXPECT_EQ(redact_credentials(R"(missing "=" after "user:S3cretPw@host/db")", "user:S3cretPw@host/db"),
            R"(missing "=" after "user:***@host/db")");
  EXPECT_EQ(redact_credentials("bad value S3cret Pw", "host=db password='S3cret Pw'"), "bad value ***");
  EXPECT_EQ(redact_credentials("nothing to hide", ""), "nothing to hide");
}

}  // namespace
}  // namespace samokoder::sdk

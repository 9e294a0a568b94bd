// TokenMemo on its own: a hit only for the exact bytes it stored, only for the memo that stored them
// (never for another memo on the same thread, even one built at the same address), only on the thread
// that stored them, and never for a token too long to keep.
#include "api/token_memo.hpp"

#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace samokoder::api {
namespace {

const std::string kToken = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJlLW9mLTMyLWJ5dGVzLXh4eHh4eHh4";

TEST(TokenMemo, AnswersOnlyForTheExactBytesItRemembered) {
  const TokenMemo<std::string> memo;
  EXPECT_FALSE(memo.find(kToken).has_value());
  memo.remember(kToken, "ada");
  ASSERT_EQ(memo.find(kToken), std::optional<std::string>("ada"));
  std::string changed = kToken;
  changed.back() = changed.back() == 'x' ? 'y' : 'x';
  EXPECT_FALSE(memo.find(changed).has_value());
  EXPECT_FALSE(memo.find(kToken.substr(0, kToken.size() - 1)).has_value());
  EXPECT_FALSE(memo.find(kToken + "x").has_value());
  EXPECT_FALSE(memo.find("").has_value());
}

TEST(TokenMemo, NeverAnswersForAnotherMemoEvenAtTheSameAddress) {
  const TokenMemo<std::string> first;
  const TokenMemo<std::string> second;
  first.remember(kToken, "verified by the first key ring");
  EXPECT_FALSE(second.find(kToken).has_value());

  std::optional<TokenMemo<std::string>> slot;
  slot.emplace();
  slot->remember(kToken, "old ring");
  const void* address = &*slot;
  slot.reset();
  slot.emplace();
  ASSERT_EQ(static_cast<const void*>(&*slot), address);
  EXPECT_FALSE(slot->find(kToken).has_value()) << "a new memo at a dead one's address inherited its answers";
}

TEST(TokenMemo, EachThreadHasItsOwnSlots) {
  const TokenMemo<std::string> memo;
  memo.remember(kToken, "ada");
  std::optional<std::string> seen_elsewhere = "not looked up";
  std::thread([&] { seen_elsewhere = memo.find(kToken); }).join();
  EXPECT_FALSE(seen_elsewhere.has_value());
  EXPECT_TRUE(memo.find(kToken).has_value());
}

TEST(TokenMemo, TokensOverTheLimitAreNotKept) {
  const TokenMemo<std::string> memo;
  const std::string longest(TokenMemo<std::string>::kMaxTokenBytes, 'a');
  const std::string too_long(TokenMemo<std::string>::kMaxTokenBytes + 1, 'b');
  memo.remember(longest, "kept");
  memo.remember(too_long, "dropped");
  EXPECT_TRUE(memo.find(longest).has_value());
  EXPECT_FALSE(memo.find(too_long).has_value());
}

TEST(TokenMemo, ATokenTakingAnotherOnesSlotReplacesIt) {
  const TokenMemo<std::string> memo;
  // Find two tokens that share a slot, then check the newer one wins and the older is a miss.
  const auto slot_of = [](const std::string& t) {
    return std::hash<std::string_view>{}(t) % TokenMemo<std::string>::kSlotsPerThread;
  };
  std::string other;
  for (int i = 0; other.empty(); ++i) {
    const std::string candidate = "token-" + std::to_string(i);
    if (slot_of(candidate) == slot_of(kToken)) other = candidate;
  }
  memo.remember(kToken, "first");
  memo.remember(other, "second");
  EXPECT_FALSE(memo.find(kToken).has_value());
  EXPECT_EQ(memo.find(other), std::optional<std::string>("second"));
}

}  // namespace
}  // namespace samokoder::api

// Hot reload of a provider plugin under the gateway (docs/ops.md "Reloading plugins"): slow streams are
// in flight through llm.openai when it is reloaded, and none of them may fail or lose text; calls that
// start after the swap reach the new generation while the old one drains. Labelled llm and reload: it
// needs the provider plugins and the model server of the llm suite, and it is a reload guarantee that
// a change to the plugin manager must keep.
#include <array>
#include <thread>

#include "gateway_providers_fixture.hpp"
#include "wait_until.hpp"

namespace samokoder::llm {
namespace {

using testing::ModelReply;
using testing::ScriptedModelServer;
using testing::wait_until;

constexpr auto kPatience = 30s;
constexpr int kInFlight = 8;
constexpr std::size_t kPieces = 40;

// " <i>", appended: g++ 12 sees a false overlap (-Wrestrict) in the concatenation inlined here.
std::string piece(std::size_t i) {
  std::string out(" ");
  out += std::to_string(i);
  return out;
}

// An answer naming the prompt, so each stream can be checked for its own whole text; slow for the
// streams that are to be in flight across the reload.
ModelReply slow_echo(const testing::ModelCall& c) {
  ModelReply reply;
  const std::string prompt = c.prompt_text();
  reply.deltas = {"echo of " + prompt + ":"};
  for (std::size_t i = 0; i < kPieces; ++i)
    reply.deltas.push_back(piece(i));
  if (prompt.rfind("stream ", 0) == 0) reply.delay_between_events = std::chrono::milliseconds(50);
  return reply;
}

std::string slow_echo_text(const std::string& prompt) {
  std::string text = "echo of " + prompt + ":";
  for (std::size_t i = 0; i < kPieces; ++i)
    text += piece(i);
  return text;
}

class GatewayReloadTest : public GatewayProvidersTest {
 protected:
  struct Stream {
    Collect seen;
    std::string prompt;
    std::optional<sdk::Result<LlmAnswer>> result;
  };

  // Starts kInFlight streams on their own threads and returns once each has received text.
  void start_streams() {
    for (int i = 0; i < kInFlight; ++i) {
      streams_[i].prompt = "stream " + std::to_string(i);
      threads_.emplace_back([this, i] {
        auto result = complete(call("default", streams_[i].prompt), &streams_[i].seen);
        streams_[i].result.emplace(std::move(result));
      });
    }
    for (auto& stream : streams_)
      ASSERT_TRUE(wait_until([&] { return stream.seen.deltas().size() >= 2; }, kPatience)) << stream.prompt;
  }

  // Joins the streams and checks each completed with its whole answer, and not a second time.
  void expect_streams_whole() {
    for (auto& thread : threads_)
      thread.join();
    threads_.clear();
    for (auto& stream : streams_) {
      ASSERT_TRUE(stream.result.has_value());
      ASSERT_TRUE(stream.result->ok()) << stream.prompt << ": " << stream.result->status().to_string();
      EXPECT_EQ((*stream.result)->completion.content, slow_echo_text(stream.prompt));
      EXPECT_EQ(stream.seen.text(), slow_echo_text(stream.prompt));
      EXPECT_EQ((*stream.result)->attempts, 1u) << stream.prompt;
    }
  }

  ~GatewayReloadTest() override {
    for (auto& thread : threads_)
      thread.join();
  }

  std::array<Stream, kInFlight> streams_;
  std::vector<std::thread> threads_;
};

TEST_F(GatewayReloadTest, ReloadingTheProviderWithStreamsInFlightFailsNoneOfThem) {
  openai_server_.respond_with(slow_echo);
  start();
  const auto before = plugins_->find("llm.openai");
  ASSERT_TRUE(before.has_value());
  start_streams();

  std::optional<sdk::Result<plugins::ReloadOutcome>> outcome;
  std::thread reloader([&] { outcome.emplace(plugins_->reload("llm.openai")); });
  // The swap happened and the old generation drains the streams: a call now reaches the new one.
  const bool draining = wait_until(
      [&] {
        const auto info = plugins_->find("llm.openai");
        return info && info->generation > before->generation && !info->retired.empty() &&
               info->retired.front().state == plugins::PluginState::kDraining;
      },
      kPatience);
  EXPECT_TRUE(draining) << "the old generation was not seen draining";
  if (draining) {
    const auto lease = plugins_->acquire("llm.openai");
    ASSERT_TRUE(lease);
    EXPECT_GT(lease.generation().number(), before->generation);
  }
  Collect during;
  auto fresh = complete(call("default", "after the swap"), &during);
  ASSERT_TRUE(fresh.ok()) << fresh.status().to_string();
  EXPECT_EQ(fresh->completion.content, slow_echo_text("after the swap"));
  reloader.join();

  ASSERT_TRUE(outcome.has_value());
  ASSERT_TRUE(outcome->ok()) << outcome->status().to_string();
  EXPECT_GT((*outcome)->generation, before->generation);
  EXPECT_TRUE((*outcome)->previous_unmapped) << "the old generation drained and left, not PINNED";
  expect_streams_whole();

  const auto after = plugins_->find("llm.openai");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->state, plugins::PluginState::kActive);
  EXPECT_EQ(after->generation, (*outcome)->generation);
  EXPECT_TRUE(after->retired.empty());
  auto later = complete(call("default", "after the reload"));
  ASSERT_TRUE(later.ok()) << later.status().to_string();
  EXPECT_EQ(openai_server_.request_count(), kInFlight + 2u);
  const auto rows = records();
  EXPECT_EQ(rows.size(), kInFlight + 2u);
  for (const auto& row : rows)
    EXPECT_EQ(row.status, "ok") << row.error;
}

// A config change reloads the plugin the same way; the new endpoint shows which generation served.
TEST_F(GatewayReloadTest, ACallAfterAConfigReloadReachesTheNewGenerationsEndpoint) {
  ScriptedModelServer next({.tls = &pki_, .expected_key = std::string(kOpenAiUserKey)});
  openai_server_.respond_with(slow_echo);
  next.respond_with(slow_echo);
  start();
  start_streams();

  config::PluginsConfig changed = plugins_config();
  for (auto& entry : changed.plugins) {
    if (entry.id == "llm.openai") entry.config["base_url"] = next.url("/v1");
  }
  auto applied = plugins_->apply_config(changed);
  ASSERT_TRUE(applied.ok()) << applied.status().to_string();
  expect_streams_whole();

  auto later = complete(call("default", "to the new endpoint"));
  ASSERT_TRUE(later.ok()) << later.status().to_string();
  EXPECT_EQ(openai_server_.request_count(), static_cast<std::size_t>(kInFlight)) << "the old streams only";
  EXPECT_EQ(next.request_count(), 1u);
  EXPECT_EQ(next.calls().at(0).prompt_text(), "to the new endpoint");
}

}  // namespace
}  // namespace samokoder::llm

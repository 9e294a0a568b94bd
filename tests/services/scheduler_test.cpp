// The task scheduler behind HostServices::scheduler(): real pool threads and a real timer thread,
// then a real fixture plugin (tests/abi/fixtures/ticking_agent.cpp) loaded, reloaded and stopped by the
// plugin manager while its timer and tasks run. Waits poll with deadlines (wait_until); nothing asserts
// a duration.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <samokoder/sdk.hpp>

#include "plugins/plugin_manager.hpp"
#include "scheduling/task_scheduler.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::scheduling {
namespace {

using std::chrono::milliseconds;
using testing::wait_until;
constexpr auto kPatience = std::chrono::seconds(20);

double tasks_counted(metrics::Registry& registry, const std::string& plugin, const char* outcome) {
  return registry.counter("samokoder_plugin_tasks_total", "", {{"plugin", plugin}, {"outcome", outcome}})
      .value();
}

// A latch a task waits on until the test opens it, with a deadline so a broken scheduler fails the
// test instead of hanging it.
class Gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  bool wait() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void make(config::WorkPoolConfig pool, milliseconds close_timeout = milliseconds(10000)) {
    view_.reset();  // a view must go before the scheduler it belongs to (AddressSanitizer)
    tasks_ = std::make_unique<TaskScheduler>(pool, close_timeout, registry_);
    view_ = tasks_->for_plugin("agent.test");
  }
  void SetUp() override { make({.threads = 2, .queue_limit = 16, .call_timeout_ms = 60000}); }
  // Posts a task that holds its thread until its token is cancelled, then sets `saw_cancel`.
  sdk::Status post_until_cancelled(std::atomic<bool>& saw_cancel) {
    return view_->post([&saw_cancel](sdk::CancelToken token) {
      wait_until([&] { return token.stop_requested(); }, kPatience, milliseconds(1));
      saw_cancel = token.stop_requested();
    });
  }
  void TearDown() override {
    view_.reset();
    if (tasks_) tasks_->stop(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  }

  metrics::Registry registry_;
  std::unique_ptr<TaskScheduler> tasks_;
  std::unique_ptr<PluginScheduler> view_;
};

TEST_F(SchedulerTest, PostRunsTheTaskOnAPoolThreadWithALiveToken) {
  std::atomic<bool> ran{false};
  std::atomic<bool> token_live{false};
  std::thread::id task_thread;
  ASSERT_TRUE(view_
                  ->post([&](sdk::CancelToken token) {
                    task_thread = std::this_thread::get_id();
                    token_live = token.stop_possible() && !token.stop_requested();
                    ran = true;
                  })
                  .ok());
  ASSERT_TRUE(wait_until([&] { return ran.load(); }, kPatience));
  EXPECT_NE(task_thread, std::this_thread::get_id());
  EXPECT_TRUE(token_live.load());
  EXPECT_TRUE(wait_until([&] { return tasks_counted(registry_, "agent.test", "done") == 1; }, kPatience));
}

TEST_F(SchedulerTest, RunAfterRunsOnceAndACancelledTimerNeverRuns) {
  std::atomic<int> once{0};
  std::atomic<int> never{0};
  ASSERT_TRUE(view_->run_after(milliseconds(1), [&](sdk::CancelToken) { ++once; }).ok());
  auto distant = view_->run_after(std::chrono::hours(1), [&](sdk::CancelToken) { ++never; });
  ASSERT_TRUE(distant.ok());
  ASSERT_TRUE(wait_until([&] { return once.load() == 1; }, kPatience));
  EXPECT_TRUE(view_->cancel_timer(*distant));
  EXPECT_FALSE(view_->cancel_timer(*distant)) << "a cancelled timer is gone";
  // A one-shot timer is forgotten once it ran: there is nothing left to cancel.
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(once.load(), 1);
  EXPECT_EQ(never.load(), 0);
}

TEST_F(SchedulerTest, RunEveryRepeatsWithoutOverlapUntilCancelled) {
  std::atomic<int> runs{0};
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  auto timer = view_->run_every(milliseconds(1), [&](sdk::CancelToken) {
    if (++inside > 1) overlapped = true;
    std::this_thread::sleep_for(milliseconds(3));  // longer than the period: runs would overlap
    --inside;
    ++runs;
  });
  ASSERT_TRUE(timer.ok());
  ASSERT_TRUE(wait_until([&] { return runs.load() >= 5; }, kPatience));
  EXPECT_FALSE(overlapped.load()) << "two runs of one timer overlapped";
  ASSERT_TRUE(view_->cancel_timer(*timer));
  ASSERT_TRUE(wait_until([&] { return inside.load() == 0; }, kPatience));
  const int after_cancel = runs.load();
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(runs.load(), after_cancel) << "a cancelled timer ran again";
}

TEST_F(SchedulerTest, AThrowingTaskIsCountedAndItsTimerKeepsRunning) {
  std::atomic<int> runs{0};
  auto timer = view_->run_every(milliseconds(1), [&](sdk::CancelToken) {
    ++runs;
    throw std::runtime_error("task failed on purpose");
  });
  ASSERT_TRUE(timer.ok());
  ASSERT_TRUE(wait_until([&] { return runs.load() >= 3; }, kPatience));
  view_->cancel_timer(*timer);
  EXPECT_GE(tasks_counted(registry_, "agent.test", "failed"), 2);
  EXPECT_EQ(tasks_counted(registry_, "agent.test", "done"), 0);
}

TEST_F(SchedulerTest, BadArgumentsAreRefusedWithTheirReason) {
  EXPECT_EQ(view_->post(nullptr).code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(view_->run_after(milliseconds(-1), [](sdk::CancelToken) {}).status().code(),
            sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(view_->run_every(milliseconds(0), [](sdk::CancelToken) {}).status().code(),
            sdk::StatusCode::kInvalidArgument);
  EXPECT_FALSE(view_->cancel_timer(12345));
}

TEST_F(SchedulerTest, AFullQueueRefusesWithResourceExhausted) {
  make({.threads = 1, .queue_limit = 1, .call_timeout_ms = 60000});
  Gate gate;
  std::atomic<bool> first_running{false};
  ASSERT_TRUE(view_
                  ->post([&](sdk::CancelToken) {
                    first_running = true;
                    gate.wait();
                  })
                  .ok());
  ASSERT_TRUE(wait_until([&] { return first_running.load(); }, kPatience));
  std::atomic<bool> queued_ran{false};
  ASSERT_TRUE(view_->post([&](sdk::CancelToken) { queued_ran = true; }).ok()) << "one may wait";
  const sdk::Status refused = view_->post([](sdk::CancelToken) {});
  EXPECT_EQ(refused.code(), sdk::StatusCode::kResourceExhausted) << refused.message();
  EXPECT_EQ(tasks_counted(registry_, "agent.test", "rejected"), 1);
  gate.open();
  EXPECT_TRUE(wait_until([&] { return queued_ran.load(); }, kPatience));
}

TEST_F(SchedulerTest, ATaskPastItsDeadlineHasItsTokenCancelled) {
  make({.threads = 1, .queue_limit = 4, .call_timeout_ms = 100});
  std::atomic<bool> saw_cancel{false};
  ASSERT_TRUE(post_until_cancelled(saw_cancel).ok());
  ASSERT_TRUE(wait_until([&] { return saw_cancel.load(); }, kPatience));
  EXPECT_TRUE(
      wait_until([&] { return tasks_counted(registry_, "agent.test", "timed_out") == 1; }, kPatience));
  // The pool replaced the stuck thread, so later work still runs.
  std::atomic<bool> later{false};
  ASSERT_TRUE(view_->post([&](sdk::CancelToken) { later = true; }).ok());
  EXPECT_TRUE(wait_until([&] { return later.load(); }, kPatience));
}

TEST_F(SchedulerTest, ADeadlineAppliedLiveGovernsTheTasksThatStartAfterIt) {
  make({.threads = 1, .queue_limit = 4, .call_timeout_ms = 600000});
  tasks_->apply_live(milliseconds(100), milliseconds(10000));
  std::atomic<bool> saw_cancel{false};
  ASSERT_TRUE(post_until_cancelled(saw_cancel).ok());
  EXPECT_TRUE(wait_until([&] { return saw_cancel.load(); }, kPatience));
}

TEST_F(SchedulerTest, CloseCancelsTokensWaitsForTasksAndRefusesNewWork) {
  std::atomic<bool> cancelled_seen{false};
  std::atomic<bool> started{false};
  ASSERT_TRUE(view_
                  ->post([&](sdk::CancelToken token) {
                    started = true;
                    wait_until([&] { return token.stop_requested(); }, kPatience, milliseconds(1));
                    std::this_thread::sleep_for(milliseconds(20));  // returns a little after the stop
                    cancelled_seen = token.stop_requested();
                  })
                  .ok());
  std::atomic<int> timer_runs{0};
  ASSERT_TRUE(view_->run_after(std::chrono::hours(1), [&](sdk::CancelToken) { ++timer_runs; }).ok());
  ASSERT_TRUE(wait_until([&] { return started.load(); }, kPatience));

  EXPECT_TRUE(view_->close());
  EXPECT_TRUE(cancelled_seen.load()) << "close() returned before the task did";
  EXPECT_EQ(view_->post([](sdk::CancelToken) {}).code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_EQ(view_->run_after(milliseconds(1), [](sdk::CancelToken) {}).status().code(),
            sdk::StatusCode::kFailedPrecondition);
  EXPECT_EQ(timer_runs.load(), 0);
}

TEST_F(SchedulerTest, CloseGivesUpOnATaskThatIgnoresItsToken) {
  make({.threads = 1, .queue_limit = 4, .call_timeout_ms = 60000}, milliseconds(100));
  Gate gate;
  std::atomic<bool> started{false};
  std::atomic<bool> returned{false};
  ASSERT_TRUE(view_
                  ->post([&](sdk::CancelToken) {
                    started = true;
                    gate.wait();
                    returned = true;
                  })
                  .ok());
  ASSERT_TRUE(wait_until([&] { return started.load(); }, kPatience));
  EXPECT_FALSE(view_->close()) << "a task still inside plugin code must keep the plugin loaded";
  EXPECT_FALSE(returned.load());
  gate.open();
  EXPECT_TRUE(wait_until([&] { return returned.load(); }, kPatience));
}

// ---- through the plugin manager, with a real plugin -------------------------------------------------

class PluginTasksTest : public ::testing::Test {
 protected:
  void start(bool stubborn, milliseconds drain = milliseconds(10000)) {
    tasks_ = std::make_unique<TaskScheduler>(
        config::WorkPoolConfig{.threads = 2, .queue_limit = 16, .call_timeout_ms = 60000}, drain, registry_);
    config::PluginsConfig plugins;
    plugins.runtime_dir = dir_.path() / "run";
    plugins.drain_timeout_ms = static_cast<std::uint32_t>(drain.count());
    config::PluginEntry ticking;
    ticking.id = "agent.fixture_ticking";
    ticking.file = SAMOKODER_FIXTURE_DIR "/fixture_ticking.so";
    ticking.required = true;
    ticking.config = {{"dir", dir_.path().string()}, {"stubborn", stubborn}};
    plugins.plugins = {ticking};
    manager_ = std::make_unique<plugins::PluginManager>(plugins, registry_, clock_,
                                                        plugins::KernelServices{tasks_.get()});
    ASSERT_TRUE(manager_->start().ok());
  }
  void TearDown() override {
    std::ofstream(dir_.path() / "release").put('1');
    if (manager_) manager_->stop();
    if (tasks_) tasks_->stop(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  }
  std::uintmax_t ticks() const {
    std::error_code ec;
    const auto size = std::filesystem::file_size(dir_.path() / "ticks", ec);
    return ec ? 0 : size;
  }
  bool exists(const char* name) const { return std::filesystem::exists(dir_.path() / name); }
  std::string read(const char* name) const {
    std::ifstream in(dir_.path() / name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  testing::TempDir dir_{"samokoder-tasks"};
  metrics::Registry registry_;
  core::SystemClock clock_;
  std::unique_ptr<TaskScheduler> tasks_;
  std::unique_ptr<plugins::PluginManager> manager_;
};

TEST_F(PluginTasksTest, ReloadStopsTheOldGenerationsTasksBeforeItsShutdownAndTheNewOneTicks) {
  start(/*stubborn=*/false);
  ASSERT_TRUE(wait_until([&] { return exists("task_entered") && ticks() >= 3; }, kPatience));

  auto reloaded = manager_->reload("agent.fixture_ticking");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().message();
  EXPECT_TRUE(exists("task_cancelled")) << "the old generation's task was not cancelled";
  EXPECT_EQ(read("shutdown"), "after_task") << "shutdown() ran while its task was still running";
  const auto info = manager_->find("agent.fixture_ticking");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->pinned_generations, 0U);

  // The new generation's timer runs; the old one's does not run on behind it (one tick per run).
  const auto before = ticks();
  EXPECT_TRUE(wait_until([&] { return ticks() >= before + 3; }, kPatience));

  manager_->stop();
  const auto stopped_at = ticks();
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(ticks(), stopped_at) << "a timer ran after its plugin was stopped";
}

TEST_F(PluginTasksTest, ATaskThatWillNotStopPinsItsGenerationInsteadOfUnloadingUnderIt) {
  start(/*stubborn=*/true, milliseconds(200));
  ASSERT_TRUE(wait_until([&] { return exists("task_entered"); }, kPatience));

  auto reloaded = manager_->reload("agent.fixture_ticking");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().message();
  const auto info = manager_->find("agent.fixture_ticking");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->pinned_generations, 1U);
  EXPECT_FALSE(exists("shutdown")) << "the old generation was shut down under its running task";

  // The stuck task returns into code that is still mapped.
  std::ofstream(dir_.path() / "release").put('1');
  EXPECT_TRUE(
      wait_until([&] { return tasks_counted(registry_, "agent.fixture_ticking", "done") >= 1; }, kPatience));
}

}  // namespace
}  // namespace samokoder::scheduling

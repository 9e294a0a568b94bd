// Conformance: 8 threads x 1000 mixed operations on one storage instance; at the end every write is
// there exactly once.
#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "storage_fixture.hpp"

namespace samokoder::testing {
namespace {

using namespace std::chrono_literals;

class ConcurrencyTest : public StorageTest {};
SAMOKODER_STORAGE_TEST_SUITE(ConcurrencyTest);

TEST_P(ConcurrencyTest, MixedOperationsLoseAndDuplicateNothing) {
  constexpr int kThreads = 8;
  constexpr int kOpsPerThread = 1000;
  constexpr int kKinds = 5;
  constexpr int kPerKind = kOpsPerThread / kKinds;
  const sdk::User owner = make_user("hammer@example.com");
  const sdk::Project shared = make_project(owner, "shared");
  const sdk::Run run = make_run(shared);
  const auto since = host().now();
  host().set_auto_advance(1us);

  struct Outcome {
    std::vector<std::string> projects;
    std::vector<std::int64_t> seqs;
    std::vector<std::string> files;
    int failures = 0;
  };
  std::vector<Outcome> outcomes(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Outcome& out = outcomes[static_cast<std::size_t>(t)];
      const std::string tag = "t" + std::to_string(t);
      for (int i = 0; i < kOpsPerThread; ++i) {
        switch (i % kKinds) {
          case 0: {
            auto p = storage().projects().create_project(
                sdk::NewProject{owner.id, tag + "-" + std::to_string(i), ""});
            if (p.ok()) {
              out.projects.push_back(p->id);
            } else {
              ++out.failures;
            }
            break;
          }
          case 1: {
            auto e = storage().runs().append_run_event(owner.id, run.id, "log", {{"t", t}, {"i", i}});
            if (e.ok()) {
              out.seqs.push_back(e->seq);
            } else {
              ++out.failures;
            }
            break;
          }
          case 2: {
            const std::string path = tag + "/f" + std::to_string(i);
            auto f =
                storage().files().put_file(owner.id, shared.id, path, "content " + std::to_string(i % 7), "");
            if (f.ok()) {
              out.files.push_back(path);
            } else {
              ++out.failures;
            }
            break;
          }
          case 3: {
            if (!storage()
                     .login_attempts()
                     .record_login_attempt(sdk::LoginAttempt{tag, "10.0.0." + std::to_string(t), false, ""})
                     .ok()) {
              ++out.failures;
            }
            break;
          }
          default: {
            // Reads of what this thread wrote must always succeed.
            if (!out.projects.empty() &&
                !storage().projects().get_project(owner.id, out.projects.back()).ok())
              ++out.failures;
            if (!storage()
                     .runs()
                     .list_run_events(owner.id, run.id, std::max<std::int64_t>(0, i - 50), 20)
                     .ok())
              ++out.failures;
            break;
          }
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  host().set_auto_advance(0s);

  std::set<std::string> created;
  std::set<std::int64_t> seqs;
  std::set<std::string> files;
  for (const Outcome& out : outcomes) {
    EXPECT_EQ(out.failures, 0);
    EXPECT_EQ(out.projects.size(), static_cast<std::size_t>(kPerKind));
    EXPECT_TRUE(std::is_sorted(out.seqs.begin(), out.seqs.end()));
    created.insert(out.projects.begin(), out.projects.end());
    seqs.insert(out.seqs.begin(), out.seqs.end());
    files.insert(out.files.begin(), out.files.end());
  }

  std::set<std::string> listed;
  std::string cursor;
  do {
    ASSERT_OK_AND_ASSIGN(auto page,
                         storage().projects().list_projects(owner.id, sdk::PageRequest{97, cursor}));
    for (const auto& p : page.items)
      EXPECT_TRUE(listed.insert(p.id).second) << "duplicate " << p.id;
    cursor = page.next_cursor;
  } while (!cursor.empty());
  created.insert(shared.id);
  EXPECT_EQ(listed, created);
  EXPECT_EQ(listed.size(), static_cast<std::size_t>(kThreads * kPerKind + 1));

  ASSERT_EQ(seqs.size(), static_cast<std::size_t>(kThreads * kPerKind));
  EXPECT_EQ(*seqs.rbegin(), kThreads * kPerKind);
  std::int64_t expected_seq = 1;
  std::int64_t after = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto batch,
                         storage().runs().list_run_events(owner.id, run.id, after, sdk::kMaxPageLimit));
    if (batch.empty()) break;
    for (const auto& e : batch)
      EXPECT_EQ(e.seq, expected_seq++);
    after = batch.back().seq;
  }
  EXPECT_EQ(expected_seq - 1, kThreads * kPerKind);

  std::set<std::string> tree;
  cursor.clear();
  do {
    ASSERT_OK_AND_ASSIGN(
        auto page,
        storage().files().list_files(owner.id, shared.id, "", sdk::PageRequest{sdk::kMaxPageLimit, cursor}));
    for (const auto& f : page.items)
      EXPECT_TRUE(tree.insert(f.path).second);
    cursor = page.next_cursor;
  } while (!cursor.empty());
  EXPECT_EQ(tree, files);
  EXPECT_EQ(tree.size(), static_cast<std::size_t>(kThreads * kPerKind));

  for (int t = 0; t < kThreads; ++t) {
    ASSERT_OK_AND_ASSIGN(std::int64_t failed, storage().login_attempts().count_failed_logins_for_subject(
                                                  "t" + std::to_string(t), since));
    EXPECT_EQ(failed, kPerKind);
  }
  ASSERT_OK_AND_ASSIGN(sdk::StorageStats stats, storage().stats());
  EXPECT_EQ(stats.file_versions, kThreads * kPerKind);
  EXPECT_EQ(stats.blobs, 7);  // "content 0".."content 6", deduplicated
}

// Two instances on one database stand for two nodes: file writes on both race the deletion of their
// project on one of them. A write either lands before the deletion (which then takes it along) or is
// refused with not_found; no other error, and no file version outlives its project.
TEST_P(ConcurrencyTest, FileWritesRacingProjectDeletionOnTwoNodesLeaveNothingBehind) {
  constexpr int kProjects = 10;
  constexpr int kWritersPerProject = 3;
  constexpr int kWritesPerWriter = 15;
  TestHost other_host("storage." + GetParam().name, database().plugin_config());
  other_host.set_now(host().now());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<LoadedStorage> other, load_another(other_host));
  sdk::Storage* nodes[] = {&storage(), &other->storage()};
  const sdk::User owner = make_user("racer@example.com");
  ASSERT_OK_AND_ASSIGN(sdk::StorageStats before, storage().stats());
  std::vector<sdk::Project> projects;
  for (int p = 0; p < kProjects; ++p)
    projects.push_back(make_project(owner, "race-" + std::to_string(p)));

  std::atomic<int> written{0};
  std::atomic<int> refused{0};
  std::vector<std::string> unexpected(kProjects * (kWritersPerProject + 1));
  std::vector<std::thread> threads;
  for (int p = 0; p < kProjects; ++p) {
    const std::string project_id = projects[static_cast<std::size_t>(p)].id;
    for (int w = 0; w < kWritersPerProject; ++w) {
      const std::size_t slot = static_cast<std::size_t>(p * (kWritersPerProject + 1) + w);
      threads.emplace_back([&, project_id, slot, w] {
        sdk::Storage& node = *nodes[(slot + 1) % 2];
        for (int i = 0; i < kWritesPerWriter; ++i) {
          const std::string path = "w" + std::to_string(w) + "/f" + std::to_string(i % 4) + ".txt";
          auto stored = node.files().put_file(owner.id, project_id, path, "content " + std::to_string(i), "");
          if (stored.ok()) {
            written.fetch_add(1);
          } else if (stored.status().code() == sdk::StatusCode::kNotFound) {
            refused.fetch_add(1);
            return;  // the project is gone
          } else {
            unexpected[slot] = stored.status().to_string();
            return;
          }
        }
      });
    }
    const std::size_t deleter_slot =
        static_cast<std::size_t>(p * (kWritersPerProject + 1) + kWritersPerProject);
    threads.emplace_back([&, project_id, deleter_slot, p] {
      // After a few reads, so that the deletion lands among the writes rather than before them.
      for (int i = 0; i < p % 4; ++i)
        static_cast<void>(nodes[p % 2]->projects().get_project(owner.id, project_id));
      const sdk::Status deleted = nodes[p % 2]->projects().delete_project(owner.id, project_id);
      if (!deleted.ok()) unexpected[deleter_slot] = deleted.to_string();
    });
  }
  for (auto& thread : threads)
    thread.join();
  for (std::size_t i = 0; i < unexpected.size(); ++i)
    EXPECT_EQ(unexpected[i], "") << "thread " << i;
  EXPECT_GT(written.load() + refused.load(), 0);
  ASSERT_OK_AND_ASSIGN(sdk::StorageStats after, storage().stats());
  EXPECT_EQ(after.file_versions, before.file_versions);
  EXPECT_EQ(after.projects, before.projects);
  for (const sdk::Project& project : projects) {
    EXPECT_CODE(storage().files().list_files(owner.id, project.id, "", sdk::PageRequest{10, ""}), kNotFound);
    EXPECT_CODE(storage().files().put_file(owner.id, project.id, "late.txt", "late", ""), kNotFound);
  }
}

}  // namespace
}  // namespace samokoder::testing

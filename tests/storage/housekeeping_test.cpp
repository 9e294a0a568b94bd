// Conformance: what the kernel's housekeeping pass relies on. Named leases give one holder at a time,
// also to two instances (nodes) racing on one database, until the lease expires or is released; a
// deleted project leaves no file version behind and its content goes with the next blob purge.
#include <atomic>
#include <thread>
#include <vector>

#include "storage_fixture.hpp"

namespace samokoder::testing {
namespace {

using namespace std::chrono_literals;

class HousekeepingTest : public StorageTest {};
SAMOKODER_STORAGE_TEST_SUITE(HousekeepingTest);

TEST_P(HousekeepingTest, NamedLeaseHasOneHolderUntilItExpiresOrIsReleased) {
  ASSERT_OK_AND_ASSIGN(bool a,
                       storage().leases().try_acquire_lease("housekeeping", "node-a", host().now() + 30s));
  EXPECT_TRUE(a);
  ASSERT_OK_AND_ASSIGN(bool b,
                       storage().leases().try_acquire_lease("housekeeping", "node-b", host().now() + 30s));
  EXPECT_FALSE(b);
  // Another name is another lease.
  ASSERT_OK_AND_ASSIGN(bool other,
                       storage().leases().try_acquire_lease("reaper", "node-b", host().now() + 30s));
  EXPECT_TRUE(other);
  // The holder extends its own lease.
  ASSERT_OK_AND_ASSIGN(a, storage().leases().try_acquire_lease("housekeeping", "node-a", host().now() + 60s));
  EXPECT_TRUE(a);
  host().advance(45s);  // past the first expiry, within the extended one
  ASSERT_OK_AND_ASSIGN(b, storage().leases().try_acquire_lease("housekeeping", "node-b", host().now() + 30s));
  EXPECT_FALSE(b);

  // node-a dies: once its lease runs out, node-b takes over, and node-a cannot release it any more.
  host().advance(15s);
  ASSERT_OK_AND_ASSIGN(b, storage().leases().try_acquire_lease("housekeeping", "node-b", host().now() + 30s));
  EXPECT_TRUE(b);
  EXPECT_CODE(storage().leases().release_lease("housekeeping", "node-a"), kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(a, storage().leases().try_acquire_lease("housekeeping", "node-a", host().now() + 30s));
  EXPECT_FALSE(a);

  // Released: the next caller gets it at once.
  ASSERT_OK(storage().leases().release_lease("housekeeping", "node-b"));
  EXPECT_CODE(storage().leases().release_lease("housekeeping", "node-b"), kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(a, storage().leases().try_acquire_lease("housekeeping", "node-a", host().now() + 30s));
  EXPECT_TRUE(a);

  EXPECT_CODE(storage().leases().try_acquire_lease("", "node-a", host().now() + 30s), kInvalidArgument);
  EXPECT_CODE(storage().leases().try_acquire_lease("housekeeping", "", host().now() + 30s), kInvalidArgument);
}

TEST_P(HousekeepingTest, NamedLeaseInsideATransactionCountsLikeADirectCall) {
  ASSERT_OK(storage().transaction([&](sdk::Stores& ops) -> sdk::Status {
    auto taken = ops.leases().try_acquire_lease("housekeeping", "node-a", host().now() + 30s);
    if (!taken.ok()) return taken.status();
    return *taken ? sdk::Status() : sdk::Status::internal("the free lease was not taken");
  }));
  ASSERT_OK_AND_ASSIGN(bool b,
                       storage().leases().try_acquire_lease("housekeeping", "node-b", host().now() + 30s));
  EXPECT_FALSE(b);
}

// Two instances on one database stand for two nodes; every thread tries at the same moment, again and
// again with fresh lease names, and each round has exactly one winner.
TEST_P(HousekeepingTest, ConcurrentCallersOnTwoInstancesHaveOneWinnerPerLease) {
  TestHost other_host("storage." + GetParam().name, database().plugin_config());
  other_host.set_now(host().now());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<LoadedStorage> other, load_another(other_host));
  sdk::Storage* nodes[] = {&storage(), &other->storage()};
  constexpr int kThreads = 8;
  constexpr int kRounds = 20;
  const auto until = host().now() + 1h;
  std::atomic<int> wins[kRounds] = {};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      sdk::Storage& node = *nodes[t % 2];
      const std::string holder = "node-" + std::to_string(t);
      for (int round = 0; round < kRounds; ++round) {
        auto taken = node.leases().try_acquire_lease("lease-" + std::to_string(round), holder, until);
        if (!taken.ok()) {
          failures.fetch_add(1);
        } else if (*taken) {
          wins[round].fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(failures.load(), 0);
  for (int round = 0; round < kRounds; ++round)
    EXPECT_EQ(wins[round].load(), 1) << "lease-" << round;
}

// docs/storage.md: deleting a project deletes its file versions; its content no other version shares
// is reclaimed by the next purge, while content shared with a surviving project stays readable.
TEST_P(HousekeepingTest, DeletedProjectLeavesNoFileVersionAndPurgeTakesItsContent) {
  const sdk::User owner = make_user("gone@example.com");
  const sdk::Project doomed = make_project(owner, "doomed");
  const sdk::Project kept = make_project(owner, "kept");
  ASSERT_OK(storage().files().put_file(owner.id, kept.id, "shared.txt", "shared", "").status());
  ASSERT_OK_AND_ASSIGN(sdk::StorageStats before, storage().stats());
  ASSERT_OK(storage().files().put_file(owner.id, doomed.id, "shared.txt", "shared", "").status());
  ASSERT_OK(storage().files().put_file(owner.id, doomed.id, "src/a.txt", "only in doomed, v1", "").status());
  ASSERT_OK(storage().files().put_file(owner.id, doomed.id, "src/a.txt", "only in doomed, v2", "").status());
  ASSERT_OK(storage().files().delete_file(owner.id, doomed.id, "src/a.txt", "").status());
  ASSERT_OK(storage().projects().delete_project(owner.id, doomed.id));

  ASSERT_OK_AND_ASSIGN(sdk::StorageStats deleted, storage().stats());
  EXPECT_EQ(deleted.file_versions, before.file_versions);
  EXPECT_EQ(deleted.blobs, before.blobs + 2);  // not yet purged
  ASSERT_OK_AND_ASSIGN(std::int64_t purged, storage().files().purge_unreferenced_blobs());
  EXPECT_EQ(purged, 2);
  ASSERT_OK_AND_ASSIGN(sdk::StorageStats after, storage().stats());
  EXPECT_EQ(after.blobs, before.blobs);
  EXPECT_EQ(after.blob_bytes, before.blob_bytes);
  EXPECT_CODE(storage().files().list_files(owner.id, doomed.id, "", sdk::PageRequest{10, ""}), kNotFound);
  ASSERT_OK_AND_ASSIGN(sdk::FileContent shared,
                       storage().files().get_file(owner.id, kept.id, "shared.txt", {}));
  EXPECT_EQ(shared.content, "shared");
}

}  // namespace
}  // namespace samokoder::testing

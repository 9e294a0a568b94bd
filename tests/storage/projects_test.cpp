// Conformance: projects, owner scoping, content-addressed versioned files, runs with leases, run steps,
// run events, LLM requests and usage, previews, stats.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "storage_fixture.hpp"

namespace samokoder::testing {
namespace {

using namespace std::chrono_literals;
using sdk::StatusCode;

class ProjectsTest : public StorageTest {};
SAMOKODER_STORAGE_TEST_SUITE(ProjectsTest);

constexpr char kHelloSha256[] = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
constexpr char kEmptySha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// ---- projects ---------------------------------------------------------------------------------------

TEST_P(ProjectsTest, ProjectRoundTripUpdateDelete) {
  const sdk::User owner = make_user("p@example.com");
  const auto t0 = host().now();
  ASSERT_OK_AND_ASSIGN(sdk::Project created, storage().projects().create_project(sdk::NewProject{
                                                 owner.id, "Todo app", "описание: a todo list"}));
  EXPECT_EQ(created.owner_id, owner.id);
  EXPECT_EQ(created.created_at, t0);
  ASSERT_OK_AND_ASSIGN(sdk::Project fetched, storage().projects().get_project(owner.id, created.id));
  EXPECT_EQ(fetched.name, "Todo app");
  EXPECT_EQ(fetched.description, "описание: a todo list");
  EXPECT_EQ(fetched.updated_at, t0);
  EXPECT_CODE(storage().projects().create_project(sdk::NewProject{owner.id, "", ""}), kInvalidArgument);
  EXPECT_CODE(storage().projects().create_project(sdk::NewProject{kUnknownId, "x", ""}), kNotFound);

  host().advance(1min);
  sdk::ProjectUpdate update;
  update.description = "changed";
  ASSERT_OK_AND_ASSIGN(sdk::Project updated,
                       storage().projects().update_project(owner.id, created.id, update));
  EXPECT_EQ(updated.name, "Todo app");
  EXPECT_EQ(updated.description, "changed");
  EXPECT_EQ(updated.updated_at, t0 + 1min);
  EXPECT_EQ(updated.created_at, t0);
  sdk::ProjectUpdate empty_name;
  empty_name.name = "";
  EXPECT_CODE(storage().projects().update_project(owner.id, created.id, empty_name), kInvalidArgument);

  ASSERT_OK(storage().projects().delete_project(owner.id, created.id));
  EXPECT_CODE(storage().projects().get_project(owner.id, created.id), kNotFound);
  EXPECT_CODE(storage().projects().delete_project(owner.id, created.id), kNotFound);
}

TEST_P(ProjectsTest, OtherUsersCannotReachAProjectOrAnythingInIt) {
  const sdk::User alice = make_user("alice@example.com");
  const sdk::User bob = make_user("bob@example.com");
  const sdk::Project project = make_project(alice, "alice's");
  const sdk::Run run = make_run(project);
  ASSERT_OK_AND_ASSIGN(
      sdk::RunStep step,
      storage().runs().append_run_step(alice.id, run.id, sdk::NewRunStep{"architect", {{"k", 1}}, ""}));
  ASSERT_OK(storage().files().put_file(alice.id, project.id, "src/main.cpp", "int main() {}", "").status());
  ASSERT_OK(storage().runs().append_run_event(alice.id, run.id, "log", {{"line", "hi"}}).status());
  ASSERT_OK(storage()
                .previews()
                .upsert_preview(alice.id, sdk::PreviewUpsert{project.id, "running", "node-1", 41000, 4242,
                                                             host().now(), host().now() + 1h})
                .status());

  // Bob sees nothing and changes nothing.
  EXPECT_CODE(storage().projects().get_project(bob.id, project.id), kNotFound);
  EXPECT_CODE(storage().projects().update_project(bob.id, project.id, sdk::ProjectUpdate{"stolen", {}}),
              kNotFound);
  EXPECT_CODE(storage().projects().delete_project(bob.id, project.id), kNotFound);
  ASSERT_OK_AND_ASSIGN(auto bobs, storage().projects().list_projects(bob.id, sdk::PageRequest{50, ""}));
  EXPECT_TRUE(bobs.items.empty());
  EXPECT_CODE(storage().files().put_file(bob.id, project.id, "evil.txt", "x", ""), kNotFound);
  EXPECT_CODE(storage().files().get_file(bob.id, project.id, "src/main.cpp", {}), kNotFound);
  EXPECT_CODE(storage().files().get_file(bob.id, project.id, "src/main.cpp", 1), kNotFound);
  EXPECT_CODE(storage().files().delete_file(bob.id, project.id, "src/main.cpp", ""), kNotFound);
  EXPECT_CODE(storage().files().list_files(bob.id, project.id, "", sdk::PageRequest{50, ""}), kNotFound);
  EXPECT_CODE(
      storage().files().list_file_versions(bob.id, project.id, "src/main.cpp", sdk::PageRequest{50, ""}),
      kNotFound);
  EXPECT_CODE(storage().runs().create_run(bob.id, sdk::NewRun{project.id, "x", "queued"}), kNotFound);
  EXPECT_CODE(storage().runs().get_run(bob.id, run.id), kNotFound);
  EXPECT_CODE(storage().runs().list_runs(bob.id, project.id, sdk::PageRequest{50, ""}), kNotFound);
  EXPECT_CODE(storage().runs().update_run(bob.id, run.id, sdk::RunUpdate{{}, "cancelled", {}, {}, {}}),
              kNotFound);
  EXPECT_CODE(storage().runs().append_run_step(bob.id, run.id, sdk::NewRunStep{"x", {}, ""}), kNotFound);
  EXPECT_CODE(storage().runs().get_run_step(bob.id, step.id), kNotFound);
  EXPECT_CODE(storage().runs().latest_run_step(bob.id, run.id), kNotFound);
  EXPECT_CODE(storage().runs().list_run_steps(bob.id, run.id, sdk::PageRequest{50, ""}), kNotFound);
  EXPECT_CODE(storage().runs().append_run_event(bob.id, run.id, "log", {}), kNotFound);
  EXPECT_CODE(storage().runs().list_run_events(bob.id, run.id, 0, 50), kNotFound);
  EXPECT_CODE(storage().previews().get_preview(bob.id, project.id), kNotFound);
  EXPECT_CODE(storage().previews().delete_preview(bob.id, project.id), kNotFound);
  EXPECT_CODE(storage().previews().upsert_preview(
                  bob.id, sdk::PreviewUpsert{project.id, "running", "n", 1, 1, {}, {}}),
              kNotFound);
  EXPECT_CODE(storage().llm_requests().record_llm_request(
                  sdk::NewLlmRequest{bob.id, project.id, "", "openai", "gpt", "", 1, 1, 1, "ok", ""}),
              kNotFound);
  EXPECT_CODE(storage().llm_requests().record_llm_request(
                  sdk::NewLlmRequest{bob.id, "", run.id, "openai", "gpt", "", 1, 1, 1, "ok", ""}),
              kNotFound);
  // Bob's own step cannot be attached to Alice's project either, nor Alice's step to Bob's.
  const sdk::Project bobs_project = make_project(bob, "bob's");
  EXPECT_CODE(storage().files().put_file(bob.id, bobs_project.id, "a.txt", "x", step.id), kNotFound);

  // Alice still has everything.
  ASSERT_OK_AND_ASSIGN(sdk::Project still, storage().projects().get_project(alice.id, project.id));
  EXPECT_EQ(still.name, "alice's");
  ASSERT_OK_AND_ASSIGN(auto events, storage().runs().list_run_events(alice.id, run.id, 0, 50));
  EXPECT_EQ(events.size(), 1u);
  ASSERT_OK_AND_ASSIGN(sdk::Run alice_run, storage().runs().get_run(alice.id, run.id));
  EXPECT_EQ(alice_run.state, "queued");
  EXPECT_OK(storage().previews().get_preview(alice.id, project.id).status());
}

TEST_P(ProjectsTest, ListProjectsPaginatesNewestFirstWhileInserting) {
  const sdk::User owner = make_user("many@example.com");
  const sdk::User other = make_user("other@example.com");
  std::set<std::string> expected;
  for (int i = 0; i < 23; ++i) {
    if (i % 5 == 0) host().advance(1s);  // groups of equal timestamps
    expected.insert(make_project(owner, "p" + std::to_string(i)).id);
    if (i % 7 == 0) make_project(other, "noise");
  }
  std::vector<sdk::Project> seen;
  std::string cursor;
  bool inserted = false;
  do {
    ASSERT_OK_AND_ASSIGN(auto page,
                         storage().projects().list_projects(owner.id, sdk::PageRequest{4, cursor}));
    seen.insert(seen.end(), page.items.begin(), page.items.end());
    cursor = page.next_cursor;
    if (!inserted) {
      // A project created mid-listing is newer than every cursor: it shows on a fresh listing only.
      host().advance(1s);
      make_project(owner, "late");
      inserted = true;
    }
  } while (!cursor.empty());
  ASSERT_EQ(seen.size(), expected.size());
  std::set<std::string> seen_ids;
  for (const auto& p : seen) {
    EXPECT_EQ(p.owner_id, owner.id);
    EXPECT_TRUE(seen_ids.insert(p.id).second) << "duplicate " << p.id;
  }
  EXPECT_EQ(seen_ids, expected);
  for (std::size_t i = 1; i < seen.size(); ++i) {
    EXPECT_TRUE(seen[i - 1].created_at > seen[i].created_at ||
                (seen[i - 1].created_at == seen[i].created_at && seen[i - 1].id > seen[i].id));
  }
  ASSERT_OK_AND_ASSIGN(auto fresh, storage().projects().list_projects(owner.id, sdk::PageRequest{1, ""}));
  ASSERT_EQ(fresh.items.size(), 1u);
  EXPECT_EQ(fresh.items[0].name, "late");
}

// ---- files --------------------------------------------------------------------------------------------

TEST_P(ProjectsTest, FileVersionsTombstonesAndOldReads) {
  const sdk::User owner = make_user("f@example.com");
  const sdk::Project project = make_project(owner);
  const auto t0 = host().now();
  ASSERT_OK_AND_ASSIGN(sdk::FileVersion v1,
                       storage().files().put_file(owner.id, project.id, "README.md", "hello", ""));
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v1.content_hash, kHelloSha256);
  EXPECT_EQ(v1.size, 5);
  EXPECT_FALSE(v1.deleted);
  EXPECT_EQ(v1.created_at, t0);
  EXPECT_TRUE(v1.run_step_id.empty());

  host().advance(1s);
  ASSERT_OK_AND_ASSIGN(sdk::FileVersion same,
                       storage().files().put_file(owner.id, project.id, "README.md", "hello", ""));
  EXPECT_EQ(same.version, 1);  // unchanged content writes nothing
  EXPECT_EQ(same.created_at, t0);

  ASSERT_OK_AND_ASSIGN(sdk::FileVersion v2,
                       storage().files().put_file(owner.id, project.id, "README.md", "hello, world", ""));
  EXPECT_EQ(v2.version, 2);
  ASSERT_OK_AND_ASSIGN(sdk::FileContent latest,
                       storage().files().get_file(owner.id, project.id, "README.md", {}));
  EXPECT_EQ(latest.content, "hello, world");
  EXPECT_EQ(latest.version.version, 2);
  ASSERT_OK_AND_ASSIGN(sdk::FileContent old,
                       storage().files().get_file(owner.id, project.id, "README.md", 1));
  EXPECT_EQ(old.content, "hello");
  EXPECT_EQ(old.version.content_hash, kHelloSha256);

  ASSERT_OK_AND_ASSIGN(sdk::FileVersion tomb,
                       storage().files().delete_file(owner.id, project.id, "README.md", ""));
  EXPECT_EQ(tomb.version, 3);
  EXPECT_TRUE(tomb.deleted);
  EXPECT_TRUE(tomb.content_hash.empty());
  EXPECT_CODE(storage().files().get_file(owner.id, project.id, "README.md", {}), kNotFound);
  EXPECT_CODE(storage().files().get_file(owner.id, project.id, "README.md", 3), kNotFound);
  EXPECT_CODE(storage().files().get_file(owner.id, project.id, "README.md", 9), kNotFound);
  EXPECT_CODE(storage().files().delete_file(owner.id, project.id, "README.md", ""), kNotFound);
  EXPECT_CODE(storage().files().delete_file(owner.id, project.id, "never.txt", ""), kNotFound);
  ASSERT_OK_AND_ASSIGN(old, storage().files().get_file(owner.id, project.id, "README.md", 2));
  EXPECT_EQ(old.content, "hello, world");

  ASSERT_OK_AND_ASSIGN(sdk::FileVersion v4,
                       storage().files().put_file(owner.id, project.id, "README.md", "hello", ""));
  EXPECT_EQ(v4.version, 4);

  std::vector<sdk::FileVersion> history;
  std::string cursor;
  do {
    ASSERT_OK_AND_ASSIGN(auto page, storage().files().list_file_versions(owner.id, project.id, "README.md",
                                                                         sdk::PageRequest{3, cursor}));
    history.insert(history.end(), page.items.begin(), page.items.end());
    cursor = page.next_cursor;
  } while (!cursor.empty());
  ASSERT_EQ(history.size(), 4u);
  EXPECT_EQ(history[0].version, 4);
  EXPECT_EQ(history[1].version, 3);
  EXPECT_TRUE(history[1].deleted);
  EXPECT_EQ(history[3].version, 1);
  EXPECT_EQ(history[3].content_hash, history[0].content_hash);
  EXPECT_CODE(
      storage().files().list_file_versions(owner.id, project.id, "never.txt", sdk::PageRequest{3, ""}),
      kNotFound);
}

// Quotas read this: the newest live version of every path across the owner's projects; history,
// tombstones, deleted projects and other owners do not count.
TEST_P(ProjectsTest, UsageOfOwnerCountsCurrentFilesAcrossProjects) {
  const sdk::User owner = make_user("usage@example.com");
  const sdk::User other = make_user("other-usage@example.com");
  ASSERT_OK_AND_ASSIGN(sdk::StorageUsage empty, storage().files().usage_of_owner(owner.id));
  EXPECT_EQ(empty.files, 0);
  EXPECT_EQ(empty.bytes, 0);
  const sdk::Project a = make_project(owner, "a");
  const sdk::Project b = make_project(owner, "b");
  const sdk::Project gone = make_project(owner, "gone");
  ASSERT_OK(storage().files().put_file(owner.id, a.id, "one.txt", std::string(100, 'x'), "").status());
  ASSERT_OK(storage()
                .files()
                .put_file(owner.id, a.id, "one.txt", std::string(30, 'y'), "")
                .status());  // newest counts
  ASSERT_OK(storage().files().put_file(owner.id, a.id, "two.txt", std::string(5, 'z'), "").status());
  ASSERT_OK(
      storage().files().delete_file(owner.id, a.id, "two.txt", "").status());  // a tombstone counts nothing
  ASSERT_OK(storage().files().put_file(owner.id, b.id, "dir/three.txt", std::string(7, 'w'), "").status());
  ASSERT_OK(storage().files().put_file(owner.id, gone.id, "four.txt", std::string(1000, 'v'), "").status());
  ASSERT_OK(storage().projects().delete_project(owner.id, gone.id));
  const sdk::Project others = make_project(other, "theirs");
  ASSERT_OK(storage().files().put_file(other.id, others.id, "x.txt", std::string(50, 'o'), "").status());

  ASSERT_OK_AND_ASSIGN(sdk::StorageUsage usage, storage().files().usage_of_owner(owner.id));
  EXPECT_EQ(usage.files, 2);
  EXPECT_EQ(usage.bytes, 37);
  ASSERT_OK_AND_ASSIGN(sdk::StorageUsage unknown, storage().files().usage_of_owner(kUnknownId));
  EXPECT_EQ(unknown.files, 0);
}

TEST_P(ProjectsTest, ContentIsStoredOncePerHash) {
  const sdk::User owner = make_user("dedup@example.com");
  const sdk::Project a = make_project(owner, "a");
  const sdk::Project b = make_project(owner, "b");
  const std::string binary("\x00\x01\x02\xff\xfe\x00tail", 9);
  ASSERT_OK(storage().files().put_file(owner.id, a.id, "one.bin", binary, "").status());
  ASSERT_OK_AND_ASSIGN(sdk::StorageStats before, storage().stats());
  ASSERT_OK(storage().files().put_file(owner.id, a.id, "copy.bin", binary, "").status());
  ASSERT_OK(storage().files().put_file(owner.id, b.id, "dir/again.bin", binary, "").status());
  ASSERT_OK_AND_ASSIGN(sdk::StorageStats after, storage().stats());
  EXPECT_EQ(after.blobs, before.blobs);
  EXPECT_EQ(after.blob_bytes, before.blob_bytes);
  EXPECT_EQ(after.file_versions, before.file_versions + 2);
  ASSERT_OK_AND_ASSIGN(sdk::FileContent read,
                       storage().files().get_file(owner.id, b.id, "dir/again.bin", {}));
  EXPECT_EQ(read.content, binary);

  ASSERT_OK_AND_ASSIGN(sdk::FileVersion empty,
                       storage().files().put_file(owner.id, a.id, "empty.txt", "", ""));
  EXPECT_EQ(empty.content_hash, kEmptySha256);
  EXPECT_EQ(empty.size, 0);
  ASSERT_OK_AND_ASSIGN(read, storage().files().get_file(owner.id, a.id, "empty.txt", {}));
  EXPECT_EQ(read.content, "");

  // Deleting project a leaves the shared blob for b; purging reclaims only unreferenced content.
  ASSERT_OK(storage().files().put_file(owner.id, a.id, "only-in-a.txt", "unique to a", "").status());
  ASSERT_OK(storage().projects().delete_project(owner.id, a.id));
  ASSERT_OK_AND_ASSIGN(std::int64_t purged, storage().files().purge_unreferenced_blobs());
  EXPECT_EQ(purged, 2);  // "" and "unique to a"
  ASSERT_OK_AND_ASSIGN(read, storage().files().get_file(owner.id, b.id, "dir/again.bin", {}));
  EXPECT_EQ(read.content, binary);
  ASSERT_OK_AND_ASSIGN(purged, storage().files().purge_unreferenced_blobs());
  EXPECT_EQ(purged, 0);
}

TEST_P(ProjectsTest, CurrentTreeListingWithPrefixAndPages) {
  const sdk::User owner = make_user("tree@example.com");
  const sdk::Project project = make_project(owner);
  const std::vector<std::string> paths = {"src/a.cpp",  "src/b.cpp", "src/sub/c.cpp",
                                          "srcx/d.cpp", "README.md", "docs/ü.md",
                                          "src/z.cpp",  "Z.txt",     "src/ä.cpp"};
  for (const auto& path : paths)
    ASSERT_OK(storage().files().put_file(owner.id, project.id, path, "x" + path, "").status());
  ASSERT_OK(storage().files().put_file(owner.id, project.id, "src/a.cpp", "changed", "").status());
  ASSERT_OK(storage().files().delete_file(owner.id, project.id, "src/b.cpp", "").status());

  std::vector<sdk::FileVersion> tree;
  std::string cursor;
  do {
    ASSERT_OK_AND_ASSIGN(auto page,
                         storage().files().list_files(owner.id, project.id, "", sdk::PageRequest{2, cursor}));
    tree.insert(tree.end(), page.items.begin(), page.items.end());
    cursor = page.next_cursor;
  } while (!cursor.empty());
  std::vector<std::string> listed;
  for (const auto& f : tree)
    listed.push_back(f.path);
  std::vector<std::string> expected = paths;
  expected.erase(std::find(expected.begin(), expected.end(), "src/b.cpp"));
  std::sort(expected.begin(), expected.end());  // bytewise
  EXPECT_EQ(listed, expected);
  const auto a = std::find_if(tree.begin(), tree.end(), [](const auto& f) { return f.path == "src/a.cpp"; });
  ASSERT_NE(a, tree.end());
  EXPECT_EQ(a->version, 2);

  ASSERT_OK_AND_ASSIGN(auto src,
                       storage().files().list_files(owner.id, project.id, "src/", sdk::PageRequest{50, ""}));
  std::vector<std::string> src_paths;
  for (const auto& f : src.items)
    src_paths.push_back(f.path);
  EXPECT_EQ(src_paths, (std::vector<std::string>{"src/a.cpp", "src/sub/c.cpp", "src/z.cpp", "src/ä.cpp"}));
  EXPECT_CODE(storage().files().list_files(owner.id, project.id, "docs/\xc3", sdk::PageRequest{50, ""}),
              kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(
      auto docs, storage().files().list_files(owner.id, project.id, "docs/ü", sdk::PageRequest{50, ""}));
  ASSERT_EQ(docs.items.size(), 1u);
  EXPECT_EQ(docs.items[0].path, "docs/ü.md");
  ASSERT_OK_AND_ASSIGN(
      auto none, storage().files().list_files(owner.id, project.id, "nothing/", sdk::PageRequest{50, ""}));
  EXPECT_TRUE(none.items.empty());
  EXPECT_TRUE(none.next_cursor.empty());
}

TEST_P(ProjectsTest, FilePathsMustBeNormalised) {
  const sdk::User owner = make_user("paths@example.com");
  const sdk::Project project = make_project(owner);
  for (const std::string& bad :
       {std::string(""), std::string("/etc/passwd"), std::string("a//b"), std::string("a/../b"),
        std::string("../a"), std::string("./a"), std::string("a/."), std::string("a/"),
        std::string("a\0b", 3), std::string("bad\xff"), std::string(4097, 'a')}) {
    SCOPED_TRACE("path \"" + bad + "\"");
    EXPECT_CODE(storage().files().put_file(owner.id, project.id, bad, "x", ""), kInvalidArgument);
    EXPECT_CODE(storage().files().get_file(owner.id, project.id, bad, {}), kInvalidArgument);
  }
  EXPECT_OK(storage().files().put_file(owner.id, project.id, std::string(4096, 'a'), "x", "").status());
  EXPECT_OK(storage().files().put_file(owner.id, project.id, ".env", "x", "").status());
  EXPECT_OK(storage().files().put_file(owner.id, project.id, "a/..b/c..", "x", "").status());
}

// ---- runs ---------------------------------------------------------------------------------------------

TEST_P(ProjectsTest, RunsRoundTripListAndCompareAndSet) {
  const sdk::User owner = make_user("runs@example.com");
  const sdk::Project project = make_project(owner);
  const auto t0 = host().now();
  ASSERT_OK_AND_ASSIGN(
      sdk::Run run, storage().runs().create_run(owner.id, sdk::NewRun{project.id, "make a blog", "queued"}));
  EXPECT_EQ(run.owner_id, owner.id);
  EXPECT_EQ(run.project_id, project.id);
  EXPECT_EQ(run.last_event_seq, 0);
  EXPECT_TRUE(run.lease_owner.empty());
  EXPECT_CODE(storage().runs().create_run(owner.id, sdk::NewRun{project.id, "x", ""}), kInvalidArgument);
  EXPECT_CODE(storage().runs().create_run(owner.id, sdk::NewRun{kUnknownId, "x", "queued"}), kNotFound);

  host().advance(1s);
  sdk::RunUpdate start;
  start.expected_state = "queued";
  start.state = "running";
  start.started_at = host().now() + 7ns;
  ASSERT_OK_AND_ASSIGN(sdk::Run running, storage().runs().update_run(owner.id, run.id, start));
  EXPECT_EQ(running.state, "running");
  ASSERT_TRUE(running.started_at.has_value());
  EXPECT_EQ(*running.started_at, t0 + 1s);
  EXPECT_EQ(running.updated_at, t0 + 1s);

  // Compare-and-set: the run is no longer queued.
  sdk::RunUpdate stale = start;
  stale.state = "cancelled";
  EXPECT_CODE(storage().runs().update_run(owner.id, run.id, stale), kFailedPrecondition);
  sdk::RunUpdate fail;
  fail.expected_state = "running";
  fail.state = "failed";
  fail.error = "npm install failed";
  fail.finished_at = host().now();
  ASSERT_OK(storage().runs().update_run(owner.id, run.id, fail).status());
  ASSERT_OK_AND_ASSIGN(sdk::Run fetched, storage().runs().get_run(owner.id, run.id));
  EXPECT_EQ(fetched.state, "failed");
  EXPECT_EQ(fetched.error, "npm install failed");
  EXPECT_EQ(fetched.description, "make a blog");
  ASSERT_TRUE(fetched.finished_at.has_value());
  EXPECT_EQ(fetched.created_at, t0);

  std::set<std::string> ids{run.id};
  for (int i = 0; i < 6; ++i)
    ids.insert(make_run(project).id);
  std::set<std::string> listed;
  std::string cursor;
  do {
    ASSERT_OK_AND_ASSIGN(auto page,
                         storage().runs().list_runs(owner.id, project.id, sdk::PageRequest{4, cursor}));
    for (const auto& r : page.items)
      EXPECT_TRUE(listed.insert(r.id).second);
    cursor = page.next_cursor;
  } while (!cursor.empty());
  EXPECT_EQ(listed, ids);
}

TEST_P(ProjectsTest, RunClaimsAndLeases) {
  const sdk::User owner = make_user("lease@example.com");
  const sdk::Project project = make_project(owner);
  const sdk::Run first = make_run(project, "queued");
  host().advance(1s);
  const sdk::Run second = make_run(project, "queued");
  host().advance(1s);
  make_run(project, "succeeded");
  const std::vector<std::string> claimable = {"queued", "running"};

  ASSERT_OK_AND_ASSIGN(auto a,
                       storage().runs().claim_run(sdk::RunClaim{"node-a", claimable, host().now() + 30s}));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->id, first.id);  // oldest first
  EXPECT_EQ(a->lease_owner, "node-a");
  ASSERT_OK_AND_ASSIGN(auto b,
                       storage().runs().claim_run(sdk::RunClaim{"node-b", claimable, host().now() + 30s}));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->id, second.id);
  ASSERT_OK_AND_ASSIGN(auto none,
                       storage().runs().claim_run(sdk::RunClaim{"node-c", claimable, host().now() + 30s}));
  EXPECT_FALSE(none.has_value());
  EXPECT_CODE(storage().runs().claim_run(sdk::RunClaim{"", claimable, host().now()}), kInvalidArgument);
  EXPECT_CODE(storage().runs().claim_run(sdk::RunClaim{"node-c", {}, host().now()}), kInvalidArgument);

  EXPECT_CODE(storage().runs().renew_run_lease(first.id, "node-b", host().now() + 1min), kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(sdk::Run renewed,
                       storage().runs().renew_run_lease(first.id, "node-a", host().now() + 1min));
  EXPECT_EQ(*renewed.lease_expires_at, host().now() + 1min);
  EXPECT_CODE(storage().runs().renew_run_lease(kUnknownId, "node-a", host().now()), kNotFound);

  // node-b dies: its lease runs out and node-c takes the run over.
  host().advance(31s);
  EXPECT_CODE(storage().runs().renew_run_lease(second.id, "node-b", host().now() + 1min),
              kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(auto taken,
                       storage().runs().claim_run(sdk::RunClaim{"node-c", claimable, host().now() + 30s}));
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->id, second.id);
  ASSERT_OK_AND_ASSIGN(sdk::Run fetched, storage().runs().get_run(owner.id, second.id));
  EXPECT_EQ(fetched.lease_owner, "node-c");

  EXPECT_CODE(storage().runs().release_run_lease(first.id, "node-c"), kFailedPrecondition);
  ASSERT_OK(storage().runs().release_run_lease(first.id, "node-a"));
  ASSERT_OK_AND_ASSIGN(fetched, storage().runs().get_run(owner.id, first.id));
  EXPECT_TRUE(fetched.lease_owner.empty());
  EXPECT_FALSE(fetched.lease_expires_at.has_value());
  ASSERT_OK_AND_ASSIGN(auto again,
                       storage().runs().claim_run(sdk::RunClaim{"node-d", claimable, host().now() + 30s}));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->id, first.id);
}

TEST_P(ProjectsTest, ConcurrentClaimsGiveEachRunToOneNode) {
  const sdk::User owner = make_user("claims@example.com");
  const sdk::Project project = make_project(owner);
  constexpr int kRuns = 12;
  for (int i = 0; i < kRuns; ++i)
    make_run(project);
  std::mutex mutex;
  std::multiset<std::string> claimed;
  std::vector<std::thread> nodes;
  for (int n = 0; n < 4; ++n) {
    nodes.emplace_back([&, n] {
      while (true) {
        auto run = storage().runs().claim_run(
            sdk::RunClaim{"node-" + std::to_string(n), {"queued"}, host().now() + 1h});
        if (!run.ok() || !run->has_value()) return;
        std::lock_guard lock(mutex);
        claimed.insert((*run)->id);
      }
    });
  }
  for (auto& t : nodes)
    t.join();
  EXPECT_EQ(claimed.size(), static_cast<std::size_t>(kRuns));
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(), static_cast<std::size_t>(kRuns));
}

// ---- run steps ------------------------------------------------------------------------------------------

TEST_P(ProjectsTest, RunStepsSequenceAndFileAttribution) {
  const sdk::User owner = make_user("steps@example.com");
  const sdk::Project project = make_project(owner);
  const sdk::Run run = make_run(project);
  EXPECT_CODE(storage().runs().latest_run_step(owner.id, run.id), kNotFound);
  std::vector<sdk::RunStep> steps;
  for (int i = 0; i < 5; ++i) {
    nlohmann::json state = {{"epics", nlohmann::json::array({{{"name", "epic " + std::to_string(i)}}})},
                            {"step", i}};
    ASSERT_OK_AND_ASSIGN(
        sdk::RunStep s,
        storage().runs().append_run_step(owner.id, run.id,
                                         sdk::NewRunStep{"developer", state, "did " + std::to_string(i)}));
    EXPECT_EQ(s.sequence, i + 1);
    steps.push_back(s);
  }
  EXPECT_CODE(storage().runs().append_run_step(owner.id, run.id, sdk::NewRunStep{"", {}, ""}),
              kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(sdk::RunStep latest, storage().runs().latest_run_step(owner.id, run.id));
  EXPECT_EQ(latest.id, steps.back().id);
  EXPECT_EQ(latest.state["step"], 4);
  ASSERT_OK_AND_ASSIGN(sdk::RunStep second, storage().runs().get_run_step(owner.id, steps[1].id));
  EXPECT_EQ(second.agent, "developer");
  EXPECT_EQ(second.summary, "did 1");
  EXPECT_EQ(second.state, steps[1].state);
  EXPECT_EQ(second.run_id, run.id);

  std::vector<std::int64_t> sequences;
  std::string cursor;
  do {
    ASSERT_OK_AND_ASSIGN(auto page,
                         storage().runs().list_run_steps(owner.id, run.id, sdk::PageRequest{2, cursor}));
    for (const auto& s : page.items)
      sequences.push_back(s.sequence);
    cursor = page.next_cursor;
  } while (!cursor.empty());
  EXPECT_EQ(sequences, (std::vector<std::int64_t>{1, 2, 3, 4, 5}));

  ASSERT_OK_AND_ASSIGN(sdk::FileVersion written, storage().files().put_file(owner.id, project.id, "app.js",
                                                                            "console.log(1)", steps[2].id));
  EXPECT_EQ(written.run_step_id, steps[2].id);
  ASSERT_OK_AND_ASSIGN(sdk::FileContent read, storage().files().get_file(owner.id, project.id, "app.js", {}));
  EXPECT_EQ(read.version.run_step_id, steps[2].id);
  EXPECT_CODE(storage().files().put_file(owner.id, project.id, "app.js", "y", kUnknownId), kNotFound);
  EXPECT_CODE(storage().files().put_file(owner.id, project.id, "app.js", "y", "not-an-id"), kNotFound);
  ASSERT_OK_AND_ASSIGN(sdk::FileVersion removed,
                       storage().files().delete_file(owner.id, project.id, "app.js", steps[3].id));
  EXPECT_EQ(removed.run_step_id, steps[3].id);
}

// ---- run events ------------------------------------------------------------------------------------------

TEST_P(ProjectsTest, RunEventsHaveIncreasingSeqAndResume) {
  const sdk::User owner = make_user("events@example.com");
  const sdk::Project project = make_project(owner);
  const sdk::Run run = make_run(project);
  const sdk::Run other_run = make_run(project);
  for (int i = 1; i <= 10; ++i) {
    ASSERT_OK_AND_ASSIGN(sdk::RunEvent e,
                         storage().runs().append_run_event(owner.id, run.id, "log", {{"line", i}}));
    EXPECT_EQ(e.seq, i);
    EXPECT_EQ(e.run_id, run.id);
    if (i % 3 == 0) {
      ASSERT_OK_AND_ASSIGN(sdk::RunEvent o,
                           storage().runs().append_run_event(owner.id, other_run.id, "tick", nullptr));
      EXPECT_EQ(o.seq, i / 3);  // each run has its own sequence
    }
  }
  EXPECT_CODE(storage().runs().append_run_event(owner.id, run.id, "", {}), kInvalidArgument);
  EXPECT_CODE(storage().runs().append_run_event(owner.id, run.id, "log", {{"bad", "\xff"}}),
              kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(sdk::Run fetched, storage().runs().get_run(owner.id, run.id));
  EXPECT_EQ(fetched.last_event_seq, 10);  // refused appends consumed nothing

  std::vector<std::int64_t> seqs;
  std::int64_t after = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto batch, storage().runs().list_run_events(owner.id, run.id, after, 4));
    if (batch.empty()) break;
    for (const auto& e : batch) {
      EXPECT_EQ(e.payload["line"], e.seq);
      EXPECT_EQ(e.type, "log");
      seqs.push_back(e.seq);
    }
    after = batch.back().seq;
  }
  EXPECT_EQ(seqs, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_CODE(storage().runs().list_run_events(owner.id, run.id, 0, 0), kInvalidArgument);
  EXPECT_CODE(storage().runs().list_run_events(owner.id, run.id, 0, sdk::kMaxPageLimit + 1),
              kInvalidArgument);
  EXPECT_CODE(storage().runs().list_run_events(owner.id, run.id, -1, 10), kInvalidArgument);

  // Events survive a restart, and appends continue where they left off.
  ASSERT_NO_FATAL_FAILURE(reopen());
  ASSERT_OK_AND_ASSIGN(auto tail, storage().runs().list_run_events(owner.id, run.id, 8, 100));
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].seq, 9);
  ASSERT_OK_AND_ASSIGN(sdk::RunEvent next,
                       storage().runs().append_run_event(owner.id, run.id, "log", {{"line", 11}}));
  EXPECT_EQ(next.seq, 11);
  ASSERT_OK_AND_ASSIGN(auto others, storage().runs().list_run_events(owner.id, other_run.id, 0, 100));
  ASSERT_EQ(others.size(), 3u);
  EXPECT_TRUE(others[0].payload.is_null());
}

TEST_P(ProjectsTest, ConcurrentEventAppendsAreGaplessAndUnique) {
  const sdk::User owner = make_user("concurrent-events@example.com");
  const sdk::Project project = make_project(owner);
  const sdk::Run run = make_run(project);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::vector<std::vector<std::int64_t>> per_thread(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto e = storage().runs().append_run_event(owner.id, run.id, "log", {{"thread", t}, {"i", i}});
        if (e.ok()) per_thread[static_cast<std::size_t>(t)].push_back(e->seq);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  std::set<std::int64_t> all;
  for (const auto& seqs : per_thread) {
    EXPECT_EQ(seqs.size(), static_cast<std::size_t>(kPerThread));
    EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
    all.insert(seqs.begin(), seqs.end());
  }
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kThreads * kPerThread);
}

// ---- LLM usage
// ----------------------------------------------------------------------------------------------

TEST_P(ProjectsTest, LlmRequestsAndUsageTotals) {
  const sdk::User user = make_user("llm@example.com");
  const sdk::User other = make_user("llm-other@example.com");
  const sdk::Project project = make_project(user);
  const sdk::Run run = make_run(project);
  const auto t0 = host().now();
  const auto record = [&](const sdk::User& u, const std::string& provider, const std::string& model,
                          int prompt, int completion, const std::string& project_id,
                          const std::string& run_id) {
    auto r = storage().llm_requests().record_llm_request(sdk::NewLlmRequest{
        u.id, project_id, run_id, provider, model, "developer", prompt, completion, 1200, "ok", ""});
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.value_or(sdk::LlmRequest{});
  };
  const sdk::LlmRequest first = record(user, "openai", "gpt-4o", 100, 50, project.id, run.id);
  EXPECT_EQ(first.created_at, t0);
  EXPECT_EQ(first.latency_ms, 1200);
  record(user, "openai", "gpt-4o", 10, 5, "", "");
  host().advance(1h);
  record(user, "openai", "gpt-4o-mini", 1, 1, project.id, "");
  record(user, "anthropic", "claude", 7, 3, "", run.id);
  record(other, "openai", "gpt-4o", 1000, 1000, "", "");
  EXPECT_CODE(storage().llm_requests().record_llm_request(
                  sdk::NewLlmRequest{user.id, "", "", "", "m", "", 0, 0, 0, "ok", ""}),
              kInvalidArgument);
  EXPECT_CODE(storage().llm_requests().record_llm_request(
                  sdk::NewLlmRequest{user.id, "", "", "p", "m", "", -1, 0, 0, "ok", ""}),
              kInvalidArgument);
  EXPECT_CODE(storage().llm_requests().record_llm_request(
                  sdk::NewLlmRequest{kUnknownId, "", "", "p", "m", "", 0, 0, 0, "ok", ""}),
              kNotFound);

  ASSERT_OK_AND_ASSIGN(auto totals, storage().llm_requests().usage_by_model(user.id, {}, {}));
  ASSERT_EQ(totals.size(), 3u);
  EXPECT_EQ(totals[0].provider, "anthropic");
  EXPECT_EQ(totals[1].model, "gpt-4o");
  EXPECT_EQ(totals[1].requests, 2);
  EXPECT_EQ(totals[1].prompt_tokens, 110);
  EXPECT_EQ(totals[1].completion_tokens, 55);
  EXPECT_EQ(totals[2].model, "gpt-4o-mini");
  ASSERT_OK_AND_ASSIGN(auto early, storage().llm_requests().usage_by_model(user.id, {}, t0 + 1min));
  ASSERT_EQ(early.size(), 1u);
  EXPECT_EQ(early[0].requests, 2);
  ASSERT_OK_AND_ASSIGN(auto late, storage().llm_requests().usage_by_model(user.id, t0 + 1h, {}));
  EXPECT_EQ(late.size(), 2u);

  std::vector<sdk::LlmRequest> listed;
  std::string cursor;
  do {
    ASSERT_OK_AND_ASSIGN(auto page,
                         storage().llm_requests().list_llm_requests(user.id, sdk::PageRequest{3, cursor}));
    listed.insert(listed.end(), page.items.begin(), page.items.end());
    cursor = page.next_cursor;
  } while (!cursor.empty());
  ASSERT_EQ(listed.size(), 4u);
  EXPECT_EQ(listed.back().created_at, t0);

  // Deleting the project keeps the records (and totals) with their references emptied.
  ASSERT_OK(storage().projects().delete_project(user.id, project.id));
  ASSERT_OK_AND_ASSIGN(auto after,
                       storage().llm_requests().list_llm_requests(user.id, sdk::PageRequest{10, ""}));
  ASSERT_EQ(after.items.size(), 4u);
  for (const auto& r : after.items) {
    EXPECT_TRUE(r.project_id.empty());
    EXPECT_TRUE(r.run_id.empty());
  }
  ASSERT_OK_AND_ASSIGN(auto kept, storage().llm_requests().usage_by_model(user.id, {}, {}));
  EXPECT_EQ(kept.size(), 3u);
}

// ---- previews
// -------------------------------------------------------------------------------------------------

TEST_P(ProjectsTest, PreviewsUpsertListDelete) {
  const sdk::User alice = make_user("pa@example.com");
  const sdk::User bob = make_user("pb@example.com");
  const sdk::Project pa = make_project(alice);
  const sdk::Project pb = make_project(bob);
  const auto t0 = host().now();
  ASSERT_OK_AND_ASSIGN(sdk::Preview started, storage().previews().upsert_preview(
                                                 alice.id, sdk::PreviewUpsert{pa.id, "starting", "node-1",
                                                                              41001, 100, t0, t0 + 1h}));
  EXPECT_EQ(started.owner_id, alice.id);
  EXPECT_EQ(started.port, 41001);
  host().advance(2s);
  ASSERT_OK_AND_ASSIGN(sdk::Preview running, storage().previews().upsert_preview(
                                                 alice.id, sdk::PreviewUpsert{pa.id, "running", "node-1",
                                                                              41001, 100, t0, t0 + 1h}));
  EXPECT_EQ(running.state, "running");
  EXPECT_EQ(running.updated_at, t0 + 2s);
  EXPECT_EQ(running.expires_at, t0 + 1h);
  ASSERT_OK(
      storage()
          .previews()
          .upsert_preview(bob.id, sdk::PreviewUpsert{pb.id, "running", "node-2", 41002, 200, t0, t0 + 1h})
          .status());
  EXPECT_CODE(storage().previews().upsert_preview(
                  alice.id, sdk::PreviewUpsert{pa.id, "running", "n", 70000, 1, t0, t0}),
              kInvalidArgument);
  EXPECT_CODE(storage().previews().upsert_preview(alice.id, sdk::PreviewUpsert{pa.id, "", "n", 1, 1, t0, t0}),
              kInvalidArgument);

  std::set<std::string> projects;
  std::string cursor;
  do {
    ASSERT_OK_AND_ASSIGN(auto page, storage().previews().list_previews(sdk::PageRequest{1, cursor}));
    for (const auto& p : page.items)
      projects.insert(p.project_id);
    cursor = page.next_cursor;
  } while (!cursor.empty());
  EXPECT_EQ(projects, (std::set<std::string>{pa.id, pb.id}));

  ASSERT_OK(storage().previews().delete_preview(alice.id, pa.id));
  EXPECT_CODE(storage().previews().get_preview(alice.id, pa.id), kNotFound);
  EXPECT_CODE(storage().previews().delete_preview(alice.id, pa.id), kNotFound);
  ASSERT_OK_AND_ASSIGN(sdk::Preview bobs, storage().previews().get_preview(bob.id, pb.id));
  EXPECT_EQ(bobs.pid, 200);
  EXPECT_EQ(bobs.node_id, "node-2");
}

}  // namespace
}  // namespace samokoder::testing

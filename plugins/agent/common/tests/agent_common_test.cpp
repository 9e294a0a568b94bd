#include <array>
#include <fstream>

#include <gtest/gtest.h>

#include <samokoder/agent_common/prompt_book.hpp>
#include <samokoder/agent_common/run_state.hpp>
#include <samokoder/agent_common/workspace_view.hpp>

#include "agent_harness.hpp"
#include "temp_dir.hpp"

namespace samokoder::agent_common {

// The library's PromptedAgent refers to the plugin's generated table; this program has its own.
std::span<const EmbeddedFile> builtin_prompts() noexcept {
  return {};
}

namespace {

constexpr std::array<EmbeddedFile, 3> kBuiltin = {{
    {"system.md", "You write {{language}} code."},
    {"plan.md", "Plan {{ task }} for {{spec}}."},
    {"plan.schema.json", R"({"type": "object", "required": ["plan"]})"},
}};

TEST(PromptBook, RendersStringsAsTheyAreAndOtherValuesAsJson) {
  auto book = PromptBook::load(kBuiltin, nlohmann::json::object());
  ASSERT_TRUE(book.ok()) << book.status().to_string();
  auto text = book->render("plan", {{"task", "the login"}, {"spec", {{"pages", 2}}}});
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  EXPECT_EQ(*text, "Plan the login for {\n  \"pages\": 2\n}.");
  EXPECT_TRUE(book->has("plan"));
  EXPECT_FALSE(book->has("review"));
  EXPECT_EQ((*book->schema("plan"))["required"][0], "plan");
  EXPECT_EQ(book->schema("system").status().code(), sdk::StatusCode::kNotFound);
}

TEST(PromptBook, APlaceholderWithoutAValueIsAnErrorNamingIt) {
  auto book = PromptBook::load(kBuiltin, nlohmann::json::object());
  ASSERT_TRUE(book.ok());
  auto text = book->render("plan", {{"task", "x"}});
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(text.status().message().find("{{spec}}"), std::string::npos) << text.status().message();
  EXPECT_EQ(book->render("review", {}).status().code(), sdk::StatusCode::kNotFound);
}

TEST(PromptBook, AFolderInConfigOverridesFilesByName) {
  testing::TempDir dir("samokoder-prompts");
  dir.write("plan.md", "Just {{task}}.");
  dir.write("plan.schema.json", R"({"type": "object", "required": ["steps"]})");
  auto book = PromptBook::load(kBuiltin, {{"prompt_dir", dir.path().string()}});
  ASSERT_TRUE(book.ok()) << book.status().to_string();
  EXPECT_EQ(*book->render("plan", {{"task", "it"}}), "Just it.");
  EXPECT_EQ((*book->schema("plan"))["required"][0], "steps");
  EXPECT_EQ(*book->render("system", {{"language", "C++"}}), "You write C++ code.");  // not overridden
}

TEST(PromptBook, AMisspeltOverrideOrABadSchemaFailsTheLoad) {
  testing::TempDir dir("samokoder-prompts");
  dir.write("plann.md", "typo");
  auto misspelt = PromptBook::load(kBuiltin, {{"prompt_dir", dir.path().string()}});
  ASSERT_FALSE(misspelt.ok());
  EXPECT_NE(misspelt.status().message().find("plann.md"), std::string::npos);

  testing::TempDir bad("samokoder-prompts");
  bad.write("plan.schema.json", "[1, 2");
  EXPECT_EQ(PromptBook::load(kBuiltin, {{"prompt_dir", bad.path().string()}}).status().code(),
            sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(PromptBook::load(kBuiltin, {{"prompt_dir", "/nonexistent/prompts"}}).status().code(),
            sdk::StatusCode::kInvalidArgument);
}

TEST(RunState, CurrentElementsFollowTheirStatuses) {
  const nlohmann::json state = {
      {"epics", {{{"id", 1}, {"completed", true}}, {{"id", 2}, {"completed", false}}}},
      {"tasks",
       {{{"id", 1}, {"status", "done"}},
        {{"id", 2}, {"status", "skipped"}},
        {{"id", 5}, {"status", "reviewed"}}}},
      {"steps", {{{"id", 1}, {"completed", true}}, {{"id", 2}}}},
      {"iterations", {{{"id", 1}, {"status", "implement_solution"}}, {{"id", 2}, {"status", "done"}}}}};
  EXPECT_EQ(current_epic(state), 1U);
  EXPECT_EQ(current_task(state), 2U);
  EXPECT_EQ(current_task_status(state), "reviewed");
  EXPECT_EQ(current_step(state), 1U);
  EXPECT_EQ(open_iteration(state), 0U);
  EXPECT_EQ(next_id(state["tasks"]), 6);
  EXPECT_EQ(next_id(nlohmann::json()), 1);
  EXPECT_FALSE(current_task(nlohmann::json::object()));
  EXPECT_EQ(current_task_status(nlohmann::json::object()), "");
}

TEST(RunState, TextAtReadsStringsOnly) {
  const nlohmann::json state = {{"spec", {{"description", "an app"}, {"complexity", 3}}}};
  EXPECT_TRUE(has_text(state, "/spec/description"));
  EXPECT_FALSE(has_text(state, "/spec/complexity"));
  EXPECT_FALSE(has_text(state, "/architecture/summary"));
  nlohmann::json changed = state;
  array_member(changed, "tasks").push_back({{"id", 1}});
  EXPECT_EQ(changed["tasks"].size(), 1U);
}

TEST(WorkspaceView, ShowsSourcesAndLeavesOutWhatIsInstalledOrTooLarge) {
  testing::ScriptedAgentContext context(nlohmann::json::object());
  context.files = {{"server.js", "console.log(1)"},
                   {"node_modules/x/index.js", "vendored"},
                   {"package-lock.json", "{}"},
                   {"public/index.html", "<h1>hi</h1>\n"},
                   {"big.txt", std::string(200, 'x')}};
  EXPECT_FALSE(is_source_path("a/node_modules/b.js"));
  EXPECT_TRUE(is_source_path("node_modules.md"));
  auto text = describe_workspace(context, 120);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("--- server.js ---\nconsole.log(1)\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("--- public/index.html ---\n<h1>hi</h1>\n"), std::string::npos) << *text;
  EXPECT_EQ(text->find("vendored"), std::string::npos);
  EXPECT_EQ(text->find("package-lock"), std::string::npos);
  EXPECT_NE(text->find("not shown (too large or binary) ---\nbig.txt\n"), std::string::npos) << *text;

  // A spent budget reads no further file (each read is a storage read), it only names them.
  testing::ScriptedAgentContext crowded(nlohmann::json::object());
  for (int i = 0; i < 20; ++i)
    crowded.files["f" + std::to_string(10 + i) + ".js"] = std::string(100, 'x');
  auto bounded = describe_workspace(crowded, 600);
  ASSERT_TRUE(bounded.ok());
  EXPECT_NE(bounded->find("--- f10.js ---"), std::string::npos);
  EXPECT_NE(bounded->find("f29.js\n"), std::string::npos) << "a file not shown is still named";
  EXPECT_EQ(bounded->find("--- f29.js ---"), std::string::npos);
  EXPECT_LT(crowded.reads, 10U) << "files past the budget were read";

  testing::ScriptedAgentContext empty(nlohmann::json::object());
  EXPECT_EQ(*describe_workspace(empty), "(the workspace is empty)");
}

}  // namespace
}  // namespace samokoder::agent_common

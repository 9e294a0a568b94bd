// agent.bootstrap through the real plugin manager: when it takes the state, what it offers the model,
// the files it copies (and keeps), the placeholders it fills, "none" and unknown templates, and the
// templates_dir and prompt_dir overrides.
#include <gtest/gtest.h>

#include "agent_harness.hpp"
#include "temp_dir.hpp"

namespace samokoder::testing {
namespace {

nlohmann::json architected() {
  return {{"description", "a to-do list"},
          {"spec",
           {{"original_description", "A \"tiny\" to-do list\nwith <priorities> & tags"},
            {"description", "# To-do\nTasks with priorities."}}},
          {"architecture",
           {{"app_type", "web-app"},
            {"summary", "Node.js on node:http"},
            {"system_dependencies", nlohmann::json::array()},
            {"package_dependencies", nlohmann::json::array()}}}};
}

nlohmann::json choice(const std::string& name, const std::string& project = "todo-list") {
  return {{"template", name}, {"project_name", project}};
}

std::string prompt_of(const sdk::ModelRequest& request) {
  return request.messages.empty() ? std::string() : request.messages.front().content;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

sdk::Result<sdk::AgentStepResult> apply(AgentHarness& agent, ScriptedAgentContext& context,
                                        const nlohmann::json& answer) {
  context.script_model("template_choice", {answer});
  return agent.run_step(context);
}

TEST(Bootstrap, WantsAnArchitectureWithoutATemplate) {
  AgentHarness agent("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN);
  ASSERT_EQ(agent.error(), "");
  EXPECT_EQ(agent.role(), "bootstrap");
  EXPECT_TRUE(agent.wants(architected()));
  auto state = architected();
  state["template"] = {{"name", "none"}, {"summary", ""}, {"run_command", ""}};
  EXPECT_FALSE(agent.wants(state));
  state = architected();
  state.erase("architecture");
  EXPECT_FALSE(agent.wants(state));
  state["architecture"] = nullptr;
  EXPECT_FALSE(agent.wants(state));
}

TEST(Bootstrap, OffersEveryTemplateWithTheSpecAndTheArchitecture) {
  AgentHarness agent("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN);
  ScriptedAgentContext context(architected());
  ASSERT_TRUE(apply(agent, context, choice("none")).ok());
  ASSERT_EQ(context.model_call_names, std::vector<std::string>{"template_choice"});
  const std::string prompt = prompt_of(context.model_calls[0]);
  EXPECT_TRUE(contains(prompt, "Tasks with priorities."));
  EXPECT_TRUE(contains(prompt, "Node.js on node:http"));
  for (const char* name :
       {"\"node_http\"", "\"vite_react_express\"", "\"python_fastapi\"", "\"python_http\""})
    EXPECT_TRUE(contains(prompt, name)) << name;
  EXPECT_TRUE(contains(prompt, "dependency-free Node.js 20 server"));  // a description
  EXPECT_FALSE(contains(prompt, "routes` object"));                    // summaries are not offered
}

TEST(Bootstrap, CopiesTheChosenTemplateWithItsPlaceholdersFilled) {
  AgentHarness agent("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN);
  ScriptedAgentContext context(architected());
  auto step = apply(agent, context, choice("node_http", "My To-Do List!"));
  ASSERT_TRUE(step.ok()) << step.status().to_string();

  const std::vector<std::string> expected = {"package.json", "public/app.js", "public/index.html",
                                             "public/style.css", "server.js"};
  EXPECT_EQ(context.written, expected);
  EXPECT_FALSE(context.files.contains("template.json"));
  const auto package = nlohmann::json::parse(context.files["package.json"]);
  EXPECT_EQ(package["name"], "my-to-do-list");
  // The description is made one line and escaped for JSON and HTML.
  EXPECT_EQ(package["description"], "A \"tiny\" to-do list with <priorities> & tags");
  EXPECT_TRUE(contains(context.files["public/index.html"],
                       "A &quot;tiny&quot; to-do list with &lt;priorities&gt; &amp; tags"));
  EXPECT_TRUE(contains(context.files["public/index.html"], "<title>my-to-do-list</title>"));
  for (const auto& [path, content] : context.files)
    EXPECT_FALSE(contains(content, "{{project_")) << path;

  const auto& template_ = step->next_state["template"];
  EXPECT_EQ(template_["name"], "node_http");
  EXPECT_EQ(template_["run_command"], "node server.js");
  EXPECT_TRUE(contains(template_["summary"].get<std::string>(), "server.js"));
  EXPECT_EQ(template_.size(), 3U);
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "template.applied");
  EXPECT_EQ(
      context.events[0].second,
      (nlohmann::json{{"name", "node_http"}, {"files", expected}, {"skipped", nlohmann::json::array()}}));
  EXPECT_FALSE(agent.wants(step->next_state));
}

TEST(Bootstrap, JsxDoubleBracesAreNotPlaceholders) {
  AgentHarness agent("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN);
  ScriptedAgentContext context(architected());
  ASSERT_TRUE(apply(agent, context, choice("vite_react_express")).ok());
  const std::string app = context.files["src/App.jsx"];
  EXPECT_TRUE(contains(app, "style={{ color:")) << app;
  EXPECT_TRUE(contains(app, "<h1>todo-list</h1>"));
  EXPECT_TRUE(contains(app, "\"A \\\"tiny\\\" to-do list with <priorities> & tags\""));
  EXPECT_TRUE(contains(context.files["index.html"], "<title>todo-list</title>"));
}

TEST(Bootstrap, FilesTheWorkspaceAlreadyHasAreKept) {
  AgentHarness agent("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN);
  ScriptedAgentContext context(architected());
  context.files["server.js"] = "// mine\n";
  context.files["notes.txt"] = "keep me";
  auto step = apply(agent, context, choice("node_http"));
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(context.files["server.js"], "// mine\n");
  EXPECT_EQ(context.written.size(), 4U);
  EXPECT_EQ(context.events[0].second["skipped"], nlohmann::json::array({"server.js"}));
  EXPECT_TRUE(contains(step->summary, "1 kept"));
}

TEST(Bootstrap, NoneOrAnUnknownTemplateStartsAnEmptyProject) {
  AgentHarness agent("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN);
  const nlohmann::json none = {{"name", "none"}, {"summary", ""}, {"run_command", ""}};

  ScriptedAgentContext chose_none(architected());
  auto step = apply(agent, chose_none, choice("none"));
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["template"], none);
  EXPECT_TRUE(chose_none.written.empty());
  ASSERT_EQ(chose_none.events.size(), 1U);
  EXPECT_EQ(chose_none.events[0].second,
            (nlohmann::json{
                {"name", "none"}, {"files", nlohmann::json::array()}, {"skipped", nlohmann::json::array()}}));

  ScriptedAgentContext made_up(architected());
  step = apply(agent, made_up, choice("django_htmx"));
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["template"], none);
  EXPECT_TRUE(made_up.written.empty());
  ASSERT_EQ(made_up.events.size(), 2U);
  EXPECT_EQ(made_up.events[0].first, "template.unknown");
  EXPECT_EQ(made_up.events[0].second["name"], "django_htmx");
  EXPECT_EQ(made_up.events[1].first, "template.applied");
  EXPECT_FALSE(agent.wants(step->next_state));
}

TEST(Bootstrap, TheProjectNameIsMadeSafe) {
  AgentHarness agent("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN);
  const std::pair<std::string, std::string> cases[] = {
      {"  Recipe_Book v2 ", "recipe-book-v2"},
      {"", "app"},
      {"!!!", "app"},
      {"--a--b--", "a-b"},
      {"Café Menu", "caf-menu"},
      {std::string(40, 'x') + " " + std::string(40, 'y'), std::string(40, 'x') + "-" + std::string(23, 'y')}};
  for (const auto& [given, expected] : cases) {
    ScriptedAgentContext context(architected());
    ASSERT_TRUE(apply(agent, context, choice("node_http", given)).ok());
    EXPECT_EQ(nlohmann::json::parse(context.files["package.json"])["name"], expected) << given;
  }
}

TEST(Bootstrap, TheSameInputsGiveTheSameStateAndFiles) {
  AgentHarness agent("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN);
  ScriptedAgentContext first(architected());
  ScriptedAgentContext second(architected());
  auto one = apply(agent, first, choice("python_fastapi", "Notes"));
  auto two = apply(agent, second, choice("python_fastapi", "Notes"));
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(one->next_state, two->next_state);
  EXPECT_EQ(first.files, second.files);
  EXPECT_EQ(first.events, second.events);
  EXPECT_EQ(prompt_of(first.model_calls[0]), prompt_of(second.model_calls[0]));
}

TEST(Bootstrap, ATemplatesDirAddsAndReplacesTemplates) {
  TempDir dir("samokoder-templates");
  dir.write("static_site/template.json",
            R"({"name": "static_site", "description": "Plain files", "stack": "HTML", "run_command": "",
                "summary": "{{project_name}} is plain HTML"})");
  dir.write("static_site/index.html", "<h1>{{project_name}}</h1>");
  dir.write("static_site/assets/site.css", "h1 { color: red; }");
  dir.write(
      "node_http/template.json",
      R"({"name": "node_http", "description": "Our own Node server", "stack": "Node", "run_command": "node app.js",
                "summary": "ours"})");
  dir.write("node_http/app.js", "console.log('{{project_name}}');");
  AgentHarness agent("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN,
                     {{"templates_dir", dir.path().string()}});
  ASSERT_EQ(agent.error(), "");

  ScriptedAgentContext offered(architected());
  ASSERT_TRUE(apply(agent, offered, choice("static_site", "site")).ok());
  const std::string prompt = prompt_of(offered.model_calls[0]);
  EXPECT_TRUE(contains(prompt, "Plain files"));
  EXPECT_TRUE(contains(prompt, "Our own Node server"));
  EXPECT_FALSE(contains(prompt, "dependency-free Node.js 20 server"));  // replaced
  EXPECT_TRUE(contains(prompt, "vite_react_express"));                  // still built in
  EXPECT_EQ(offered.written, (std::vector<std::string>{"assets/site.css", "index.html"}));
  EXPECT_EQ(offered.files["index.html"], "<h1>site</h1>");

  ScriptedAgentContext replaced(architected());
  auto step = apply(agent, replaced, choice("node_http", "x"));
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(replaced.written, std::vector<std::string>{"app.js"});
  EXPECT_EQ(step->next_state["template"]["run_command"], "node app.js");
}

TEST(Bootstrap, AMalformedTemplatesDirFailsInitWithTheReason) {
  const auto error_for = [](const std::function<void(const TempDir&)>& fill) {
    TempDir dir("samokoder-templates");
    fill(dir);
    AgentHarness agent("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN,
                       {{"templates_dir", dir.path().string()}});
    return agent.error();
  };
  const std::string manifest =
      R"({"name": "mine", "description": "d", "stack": "s", "run_command": "", "summary": ""})";
  EXPECT_TRUE(contains(error_for([](const TempDir& dir) { dir.write("mine/index.html", "x"); }),
                       "has no template.json"));
  EXPECT_TRUE(contains(error_for([](const TempDir& dir) {
                         dir.write("mine/template.json", "{not json");
                         dir.write("mine/index.html", "x");
                       }),
                       "not a JSON object"));
  EXPECT_TRUE(contains(error_for([&](const TempDir& dir) {
                         dir.write("other/template.json", manifest);
                         dir.write("other/index.html", "x");
                       }),
                       "not its folder's name"));
  EXPECT_TRUE(contains(error_for([](const TempDir& dir) {
                         dir.write("mine/template.json", R"({"name": "mine", "description": "d"})");
                         dir.write("mine/index.html", "x");
                       }),
                       "\"stack\""));
  EXPECT_TRUE(contains(error_for([&](const TempDir& dir) { dir.write("mine/template.json", manifest); }),
                       "no files"));
  EXPECT_TRUE(contains(error_for([](const TempDir& dir) { dir.write("README.md", "templates"); }),
                       "README.md, which is not a template folder"));
  EXPECT_TRUE(contains(error_for([&](const TempDir& dir) {
                         dir.write("Bad Name/template.json", manifest);
                         dir.write("Bad Name/index.html", "x");
                       }),
                       "[a-z0-9_-]"));
  AgentHarness missing("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN,
                       {{"templates_dir", "/nonexistent/templates"}});
  EXPECT_TRUE(contains(missing.error(), "is not a folder")) << missing.error();
}

TEST(Bootstrap, APromptDirReplacesABuiltInPrompt) {
  TempDir dir("samokoder-bootstrap-prompts");
  dir.write("template_choice.md", "Pick from {{templates}} for {{spec}} on {{architecture}}");
  AgentHarness agent("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN,
                     {{"prompt_dir", dir.path().string()}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext context(architected());
  ASSERT_TRUE(apply(agent, context, choice("none")).ok());
  EXPECT_TRUE(prompt_of(context.model_calls[0]).starts_with("Pick from [\n  {\n    \"description\""));
}

}  // namespace
}  // namespace samokoder::testing

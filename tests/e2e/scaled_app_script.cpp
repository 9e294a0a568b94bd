#include "scaled_app_script.hpp"

#include <string_view>

#include "todo_app_script.hpp"

namespace samokoder::testing {
namespace {

using nlohmann::json;

constexpr std::string_view kTaskMarker = "[bench task ";

// The number after `name` in `text` (its first occurrence), or `fallback`.
int number_after(const std::string& text, std::string_view name, int fallback) {
  const auto at = text.find(name);
  if (at == std::string::npos) return fallback;
  std::size_t end = at + name.size();
  int value = 0;
  bool any = false;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9') {
    value = value * 10 + (text[end++] - '0');
    any = true;
  }
  return any ? value : fallback;
}

int tasks_of(const std::string& prompt) { return number_after(prompt, "bench_tasks=", 1); }
int files_of(const std::string& prompt) { return number_after(prompt, "bench_files=", 1); }
int task_of(const std::string& prompt) { return number_after(prompt, kTaskMarker, 0); }

std::string group(int task) { return "g" + std::to_string(task); }
std::string module_path(int task, int file) {
  return "public/" + group(task) + "/m" + std::to_string(file) + ".js";
}

// The path a code monkey's prompt names on its "File: <path>" line.
std::string file_of(const std::string& prompt) {
  const auto at = prompt.find("File: ");
  if (at == std::string::npos) return {};
  const auto end = prompt.find('\n', at);
  return prompt.substr(at + 6, end == std::string::npos ? std::string::npos : end - at - 6);
}

json task_steps(const std::string& prompt) {
  const int task = task_of(prompt);
  if (task <= 0) return nullptr;
  const int files = files_of(prompt);
  json steps = json::array();
  for (int file = 1; file <= files; ++file)
    steps.push_back({{"type", "save_file"},
                     {"path", module_path(task, file)},
                     {"description", "module " + std::to_string(file) + " of group " + std::to_string(task)},
                     {"command", nullptr},
                     {"timeout_s", nullptr}});
  steps.push_back({{"type", "command"},
                   {"path", nullptr},
                   {"description", "check that the group's first module parses"},
                   {"command", "node --check " + module_path(task, 1)},
                   {"timeout_s", 60}});
  return {{"instructions", "Write the " + std::to_string(files) + " modules of group " + std::to_string(task) +
                               " under public/" + group(task) + "/, each a small object naming itself."},
          {"steps", std::move(steps)}};
}

json check(const char* method, const std::string& path, int status, const std::string& contains) {
  return {{"method", method}, {"path", path}, {"body", nullptr}, {"expect_status", status},
          {"expect_contains", contains}};
}

json app_check(const std::string& prompt) {
  const int task = task_of(prompt);
  if (task <= 0) return nullptr;
  const std::string name = group(task) + "-m1";
  return {{"run_command", "node server.js"},
          {"checks",
           {check("GET", "/api/health", 200, "\"ok\":true"), check("GET", "/" + group(task) + "/m1.js", 200, name)}},
          {"user_review",
           {{{"title", "Group " + std::to_string(task)},
             {"action", "open /" + group(task) + "/m1.js"},
             {"result", "it names " + name}}}}};
}

}  // namespace

std::string ScaledAppScript::description(int tasks, int files, bool ask) {
  return std::string(ask ? "[ask] " : "") + "a generated app for the pipeline bench, bench_tasks=" + std::to_string(tasks) +
         " bench_files=" + std::to_string(files) + ": groups of small JavaScript modules served by a Node.js page";
}

std::string ScaledAppScript::file_content(int task, int file) {
  const std::string name = group(task) + "-m" + std::to_string(file);
  const std::string variable = group(task) + "_m" + std::to_string(file);
  return "'use strict';\n// Module " + std::to_string(file) + " of group " + std::to_string(task) +
         ", written by the pipeline bench's scripted model.\nconst " + variable + " = { name: '" + name +
         "', group: " + std::to_string(task) + ", module: " + std::to_string(file) +
         " };\nif (typeof module !== 'undefined') module.exports = " + variable + ";\n";
}

ModelReply ScaledAppScript::answer(const ModelCall& call) const {
  const std::string name = TodoAppScript::call_name(call);
  const json answer = answer_json(name, call.prompt_text());
  ModelReply reply;
  if (answer.is_null()) {
    reply.status = 500;
    reply.error_message = "the scaled app script has no answer for the call '" + name + "'";
    return reply;
  }
  const std::string text = answer.dump();
  // Streamed in two pieces, split inside the JSON, as a model streams it.
  reply.deltas = {text.substr(0, text.size() / 2), text.substr(text.size() / 2)};
  reply.usage = ScriptedUsage{400, 200, 0, 0};
  return reply;
}

json ScaledAppScript::answer_json(const std::string& name, const std::string& prompt) {
  const int tasks = tasks_of(prompt);
  const int files = files_of(prompt);
  const std::string size = "bench_tasks=" + std::to_string(tasks) + " bench_files=" + std::to_string(files);
  if (name == "spec_review") {
    if (prompt.find("[ask]") != std::string::npos)
      return {{"complexity", "simple"}, {"clear", false}, {"questions", {kSpecQuestion}}};
    return {{"complexity", "simple"}, {"clear", true}, {"questions", json::array()}};
  }
  if (name == "spec")
    return {{"spec", "# Bench app (" + size + ")\n\nA page served by Node.js with " + std::to_string(tasks) +
                         " groups of " + std::to_string(files) +
                         " small JavaScript modules each, every module served as a static file.\n"},
            {"summary", "Groups of small modules served by a Node.js page (" + size + ")"}};
  if (name == "architecture")
    return {{"app_type", "web-app"},
            {"summary", "Node.js 20 with node:http only: server.js serves the API and the files of public/."},
            {"system_dependencies",
             {{{"name", "node"}, {"description", "runs the server"}, {"test", "node --version"}, {"required_locally", true}}}},
            {"package_dependencies", json::array()}};
  if (name == "template_choice") return {{"template", "node_http"}, {"project_name", "bench-app"}};
  if (name == "task_plan") {
    json list = json::array();
    for (int task = 1; task <= tasks; ++task)
      list.push_back({{"description", std::string(kTaskMarker) + std::to_string(task) + "] Write the " +
                                          std::to_string(files) + " modules of group " + std::to_string(task) +
                                          " under public/" + group(task) + "/"},
                      {"testing_instructions", "open /" + group(task) + "/m1.js and see it name " + group(task) + "-m1"}});
    return {{"tasks", std::move(list)}};
  }
  if (name == "task_steps") return task_steps(prompt);
  if (name == "file_content") {
    const std::string path = file_of(prompt);
    const int task = number_after(path, "public/g", 0);
    const int file = number_after(path, "/m", 0);
    if (task <= 0 || file <= 0) return nullptr;
    return {{"content", file_content(task, file)}};
  }
  if (name == "file_review") return {{"approved", true}, {"feedback", ""}};
  if (name == "app_check") return app_check(prompt);
  if (name == "readme")
    return {{"readme", "# Bench app\n\n" + std::to_string(tasks) + " groups of " + std::to_string(files) +
                           " modules under public/.\n\nRun it with `node server.js` (PORT and HOST from the "
                           "environment).\n"}};
  return nullptr;
}

}  // namespace samokoder::testing

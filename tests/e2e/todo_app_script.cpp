#include "todo_app_script.hpp"

#include <utility>

namespace samokoder::testing {
namespace {

using nlohmann::json;

// The tasks the tech lead's plan names; the developer's and troubleshooter's prompts carry them.
constexpr const char* kApiTask =
    "Serve the to-dos over a JSON API: GET, POST and DELETE /api/todos, kept in memory";
constexpr const char* kPageTask =
    "Make the page that lists the to-dos and adds and deletes them through the API";
constexpr const char* kBlueTask = "Colour the page's add button blue";

const char* const kServer = R"JS(const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
const root = path.join(__dirname, 'public');
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };
const todos = [];
let nextId = 1;

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'Content-Type': type });
  res.end(body);
}

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/api/todos' && req.method === 'GET') return send(res, 200, JSON.stringify(todos));
  if (url.pathname === '/api/todos' && req.method === 'POST') {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      let title;
      try { title = JSON.parse(body).title; } catch { title = undefined; }
      if (typeof title !== 'string' || !title.trim()) return send(res, 400, JSON.stringify({ error: 'title is required' }));
      const todo = { id: nextId++, title: title.trim() };
      todos.push(todo);
      send(res, 201, JSON.stringify(todo));
    });
    return;
  }
  const match = url.pathname.match(/^\/api\/todos\/(\d+)$/);
  if (match && req.method === 'DELETE') {
    const index = todos.findIndex((todo) => todo.id === Number(match[1]));
    if (index < 0) return send(res, 404, JSON.stringify({ error: 'no such to-do' }));
    todos.splice(index, 1);
    res.writeHead(204);
    return res.end();
  }
  const file = path.normalize(path.join(root, url.pathname === '/' ? 'index.html' : url.pathname));
  if (!file.startsWith(root + path.sep)) return send(res, 404, 'not found', 'text/plain');
  fs.readFile(file, (error, data) => {
    if (error) return send(res, 404, 'not found', 'text/plain');
    send(res, 200, data, types[path.extname(file)] || 'application/octet-stream');
  });
}).listen(port, host, () => console.log(`to-do list on http://${host}:${port}`));
)JS";

// The first draft: a brace short, so `node --check server.js` fails.
std::string broken_server() {
  std::string text = kServer;
  text.erase(text.rfind("}).listen"), 1);
  return text;
}

const char* const kIndex = R"HTML(<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>My to-do list</title>
  <link rel="stylesheet" href="/style.css">
</head>
<body>
  <main>
    <h1>My to-do list</h1>
    <form id="add">
      <label for="title">New to-do</label>
      <input id="title" name="title" required>
      <button type="submit" id="add-button">Add</button>
    </form>
    <ul id="todos"></ul>
  </main>
  <script src="/app.js"></script>
</body>
</html>
)HTML";

const char* const kApp = R"JS(const list = document.getElementById('todos');
const form = document.getElementById('add');

async function refresh() {
  const todos = await (await fetch('/api/todos')).json();
  list.replaceChildren(...todos.map((todo) => {
    const item = document.createElement('li');
    item.textContent = todo.title + ' ';
    const remove = document.createElement('button');
    remove.textContent = 'Delete';
    remove.addEventListener('click', async () => {
      await fetch('/api/todos/' + todo.id, { method: 'DELETE' });
      refresh();
    });
    item.append(remove);
    return item;
  }));
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const title = form.elements.title.value;
  await fetch('/api/todos', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                              body: JSON.stringify({ title }) });
  form.reset();
  refresh();
});

refresh();
)JS";

const char* const kStyle =
    R"CSS(body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; }
#add-button { background: blue; color: white; border: 0; padding: 0.4rem 1rem; }
li { margin: 0.3rem 0; }
)CSS";

json steps_for(const std::string& prompt, bool fix) {
  const auto save = [](const char* path, const char* what) {
    return json{{"type", "save_file"},
                {"path", path},
                {"description", what},
                {"command", nullptr},
                {"timeout_s", nullptr}};
  };
  const auto run = [](const char* command, const char* what) {
    return json{{"type", "command"},
                {"path", nullptr},
                {"description", what},
                {"command", command},
                {"timeout_s", 60}};
  };
  if (fix || prompt.find(kApiTask) != std::string::npos)
    return {{"instructions",
             fix ? "Rewrite server.js so it parses, then check it." : "A node:http server with the API."},
            {"steps",
             {save("server.js", "the HTTP server: the to-do API and the page's files"),
              run("node --check server.js", "check that server.js parses")}}};
  if (prompt.find(kPageTask) != std::string::npos)
    return {{"instructions", "A page and its script, talking to the API."},
            {"steps",
             {save("public/index.html", "the page: a form to add and the list"),
              save("public/app.js", "loads, adds and deletes to-dos through the API"),
              run("node --check public/app.js", "check that the script parses")}}};
  if (prompt.find(kBlueTask) != std::string::npos)
    return {{"instructions", "Style the add button."},
            {"steps", {save("public/style.css", "the page's styles with a blue add button")}}};
  return nullptr;
}

json check(const char* method, const char* path, json body, int status, json contains) {
  return {{"method", method},
          {"path", path},
          {"body", std::move(body)},
          {"expect_status", status},
          {"expect_contains", std::move(contains)}};
}

json checks_for(const std::string& prompt) {
  const json review = {
      {{"title", "Add"}, {"action", "type 'buy milk' and press Add"}, {"result", "it is listed"}}};
  const auto answer = [&](json checks) {
    return json{{"run_command", "node server.js"}, {"checks", std::move(checks)}, {"user_review", review}};
  };
  if (prompt.find(kApiTask) != std::string::npos)
    return answer({check("POST", "/api/todos", R"({"title": "buy milk"})", 201, "buy milk"),
                   check("GET", "/api/todos", nullptr, 200, "buy milk"),
                   check("DELETE", "/api/todos/1", nullptr, 204, nullptr),
                   check("GET", "/api/todos", nullptr, 200, "[]")});
  if (prompt.find(kPageTask) != std::string::npos)
    return answer({check("GET", "/", nullptr, 200, TodoAppScript::kPageTitle),
                   check("GET", "/app.js", nullptr, 200, "/api/todos")});
  if (prompt.find(kBlueTask) != std::string::npos)
    return answer({check("GET", "/style.css", nullptr, 200, "background: blue")});
  return nullptr;
}

// The path a code monkey's prompt names on its "File: <path>" line.
std::string file_of(const std::string& prompt) {
  const auto at = prompt.find("File: ");
  if (at == std::string::npos) return {};
  const auto end = prompt.find('\n', at);
  return prompt.substr(at + 6, end == std::string::npos ? std::string::npos : end - at - 6);
}

}  // namespace

std::string TodoAppScript::call_name(const ModelCall& call) {
  const auto& body = call.body;
  if (!body.is_object()) return {};
  if (const auto format = body.find("response_format"); format != body.end() && format->is_object())
    return format->value("/json_schema/name"_json_pointer, std::string());
  if (const auto choice = body.find("tool_choice"); choice != body.end() && choice->is_object())
    return choice->value("name", std::string());  // Anthropic: the forced tool is named after the output
  return {};
}

ModelReply TodoAppScript::answer(const ModelCall& call) {
  std::lock_guard lock(mutex_);
  const std::string key = call.body.dump();
  if (const auto it = given_.find(key); it != given_.end()) return it->second;
  const std::string name = call_name(call);
  const json answer = answer_json(name, call.prompt_text());
  ModelReply reply;
  if (answer.is_null()) {
    reply.status = 500;
    reply.error_message = "the to-do script has no answer for the call '" + name + "'";
  } else {
    const std::string text = answer.dump();
    // Streamed in two pieces, split inside the JSON, as a model streams it.
    reply.deltas = {text.substr(0, text.size() / 2), text.substr(text.size() / 2)};
    reply.usage = ScriptedUsage{400, 200, 0, 0};
  }
  given_[key] = reply;
  return reply;
}

json TodoAppScript::answer_json(const std::string& name, const std::string& prompt) {
  if (name == "spec_review")
    return {{"complexity", "simple"}, {"clear", false}, {"questions", {kClarifyingQuestion}}};
  if (name == "spec")
    return {
        {"spec",
         "# To-do list\n\nA single page where a person keeps a list of things to do.\n\n"
         "- Add an item by its title; list all items; delete an item.\n"
         "- A JSON API on the same server: GET /api/todos -> [{id, title}], POST /api/todos {title} -> 201 "
         "{id, title}, DELETE /api/todos/{id} -> 204.\n- Items are kept in memory; a restart empties the "
         "list.\n"},
        {"summary", "A to-do list page over a small JSON API, kept in memory"}};
  if (name == "architecture")
    return {{"app_type", "web-app"},
            {"summary", "Node.js 20 with node:http only: server.js serves the API and the files of public/."},
            {"system_dependencies",
             {{{"name", "node"},
               {"description", "runs the server"},
               {"test", "node --version"},
               {"required_locally", true}}}},
            {"package_dependencies", json::array()}};
  if (name == "template_choice") return {{"template", "node_http"}, {"project_name", "todo-list"}};
  if (name == "task_plan") {
    const auto task = [](const char* description, const char* how) {
      return json{{"description", description}, {"testing_instructions", how}};
    };
    if (prompt.find(kChangeRequest) != std::string::npos ||
        prompt.find("Blue add button") != std::string::npos)
      return {{"tasks", {task(kBlueTask, "the Add button is blue")}}};
    return {{"tasks",
             {task(kApiTask, "POST a to-do, see it in GET, DELETE it"),
              task(kPageTask, "add and delete on the page")}}};
  }
  if (name == "task_steps") return steps_for(prompt, false);
  if (name == "iteration_steps") return steps_for(prompt, true);
  if (name == "file_content") {
    const std::string path = file_of(prompt);
    const std::size_t version = file_versions_[path]++;
    if (path == "server.js") return {{"content", version == 0 ? broken_server() : std::string(kServer)}};
    if (path == "public/index.html") return {{"content", kIndex}};
    if (path == "public/app.js") return {{"content", kApp}};
    if (path == "public/style.css") return {{"content", kStyle}};
    return nullptr;
  }
  if (name == "file_review") return {{"approved", true}, {"feedback", ""}};
  if (name == "fix_plan")
    return {
        {"diagnosis", "server.js does not parse: the server's handler lacks its closing brace."},
        {"fix", "Write server.js again in full with the handler closed, then run `node --check server.js`."}};
  if (name == "app_check") return checks_for(prompt);
  if (name == "readme")
    return {{"readme",
             "# My to-do list\n\nAdd, list and delete to-dos.\n\nRun it with `node server.js` "
             "(PORT and HOST from the environment).\n\n## API\n\n- `GET /api/todos`\n- `POST /api/todos` "
             "`{\"title\": ...}`\n- `DELETE /api/todos/{id}`\n"}};
  if (name == "feature")
    return {{"spec", "# To-do list\n\nAs before, and the page's add button is blue.\n"},
            {"feature", "Make the page's add button blue (" + std::string(kChangeRequest) + ")"},
            {"name", "Blue add button"}};
  if (name == "user_report") return {{"fix", "Do what the user reported."}};
  return nullptr;
}

}  // namespace samokoder::testing

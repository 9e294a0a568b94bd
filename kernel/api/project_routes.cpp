// Projects and their files. Storage is the source of truth (every write is a content-addressed
// version); each project's workspace directory mirrors the current tree for commands and previews.
//
// Consistency order, per project serialised by a striped lock on this node and, across nodes sharing
// one database, by the project row lock the storage write takes:
//   PUT file     confirm the project (404) -> check the workspace path (400 for a symlink or special
//                file, 409 for a directory clash) -> storage put_file -> atomic workspace write ->
//                confirm the project again. If the workspace write fails the version stays stored and
//                the answer is 500 workspace_write_failed; the next write of the path, or a later sync,
//                repairs the copy. A project found gone (deleted by another node meanwhile) at either
//                confirmation has its directory removed and the answer is 404.
//   DELETE file  confirm the project -> check the workspace path -> storage delete_file (404 when not
//                live) -> workspace unlink (500 workspace_write_failed on failure, like a write).
//   DELETE project  storage delete_project (cascades to versions) -> remove the directory; a failure
//                of the latter is logged and the answer is still 204, since the project is gone.
// Reads (file content, history, export) come from storage; a read of a name that is a symlink or a
// special file in the workspace is refused all the same, so the API and the working copy never
// disagree about what a name refers to.
#include <array>
#include <charconv>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/content_type.hpp"
#include "api/export_gate.hpp"
#include "api/resource_routes.hpp"
#include "api/tar_gz.hpp"
#include "api/workspace.hpp"
#include "core/logging.hpp"
#include "http/json_writer.hpp"
#include "security/path_guard.hpp"

namespace samokoder::api {
namespace {

using boost::beast::http::verb;

constexpr std::size_t kMaxNameChars = 100;
constexpr std::size_t kMaxDescriptionChars = 1000;
// CSP for served file content: whatever the type, a browser renders it without scripts, plugins or
// same-origin privileges.
constexpr std::string_view kFileContentPolicy = "default-src 'none'; frame-ancestors 'none'; sandbox";

// Serialises file writes and project deletion per project on this node, so the workspace ends with
// the content of the newest stored version and a deleted project's directory is not recreated by a
// write that raced the delete.
class ProjectLocks {
 public:
  std::unique_lock<std::mutex> lock(std::string_view project_id) {
    return std::unique_lock<std::mutex>(
        stripes_[std::hash<std::string_view>{}(project_id) % stripes_.size()]);
  }

 private:
  std::array<std::mutex, 64> stripes_;
};

struct ProjectState {
  ProjectState(std::filesystem::path root, Workspaces::Observer observer, const config::LimitsConfig& limits)
      : workspaces(std::move(root), std::move(observer)),
        exports(limits.concurrent_exports_per_user, limits.concurrent_exports),
        limits(limits) {}
  Workspaces workspaces;
  ProjectLocks locks;
  ExportGate exports;
  const config::LimitsConfig limits;
};

http::Response busy(unsigned status, std::string_view detail) {
  auto response =
      http::Response::problem(status, status == 429 ? "too_many_exports" : "exports_busy",
                              status == 429 ? "Too Many Requests" : "Service Unavailable", detail);
  response.set_header("Retry-After", "5");
  return response;
}

// Refuses a write that would take the owner past a quota. Not atomic with the write itself: writes of one
// user that run at the same moment can each pass the check, so a quota can be overshot by the files of
// the writes in flight (a few request bodies), never more.
std::optional<http::Response> quota_refusal(const ApiContext& context, const ProjectState& state,
                                            const std::string& owner_id, const std::string& project_id,
                                            const std::string& path, std::size_t new_size) {
  auto usage =
      context.store<sdk::FileStore>([&](sdk::FileStore& files) { return files.usage_of_owner(owner_id); });
  if (!usage.ok()) return problem_from_status(usage.status());
  sdk::PageRequest newest;
  newest.limit = 1;
  auto versions = context.store<sdk::FileStore>(
      [&](sdk::FileStore& files) { return files.list_file_versions(owner_id, project_id, path, newest); });
  std::int64_t replaced_size = 0;
  bool replaces_a_live_file = false;
  if (versions.ok() && !versions->items.empty() && !versions->items.front().deleted) {
    replaces_a_live_file = true;
    replaced_size = versions->items.front().size;
  } else if (!versions.ok() && versions.status().code() != sdk::StatusCode::kNotFound) {
    return problem_from_status(versions.status());
  }
  const auto files = static_cast<std::uint64_t>(usage->files) + (replaces_a_live_file ? 0 : 1);
  const auto bytes =
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, usage->bytes - replaced_size)) + new_size;
  auto refuse = [](const char* quota, std::uint64_t used, std::uint64_t limit) {
    return http::Response::problem(
        413, "quota_exceeded", "Quota Exceeded",
        std::string("this write would take your projects to ") + std::to_string(used) + " " + quota +
            ", over the limit of " + std::to_string(limit) + "; delete files or ask an operator to raise it");
  };
  if (files > state.limits.files_per_user) return refuse("files", files, state.limits.files_per_user);
  if (bytes > state.limits.workspace_bytes_per_user && new_size > static_cast<std::uint64_t>(replaced_size)) {
    return refuse("bytes", bytes, state.limits.workspace_bytes_per_user);
  }
  return std::nullopt;
}

// A project as the API shows it, written straight into the body (lists of projects are the hottest
// authenticated read); members in key order, as dump_json writes an object.
void write_project(http::JsonWriter& json, const sdk::Project& project) {
  json.begin_object()
      .key("created_at")
      .string(format_timestamp(project.created_at))
      .key("description")
      .string(project.description)
      .key("id")
      .string(project.id)
      .key("name")
      .string(project.name)
      .key("updated_at")
      .string(format_timestamp(project.updated_at))
      .end_object();
}

http::Response project_response(unsigned status, const sdk::Project& project) {
  std::string body;
  http::JsonWriter json(body);
  write_project(json, project);
  return http::Response::text(status, std::move(body), "application/json");
}

nlohmann::json file_json(const sdk::FileVersion& file) {
  return {{"path", file.path},
          {"version", file.version},
          {"size", file.size},
          {"content_hash", file.content_hash},
          {"updated_at", format_timestamp(file.created_at)}};
}

nlohmann::json version_json(const sdk::FileVersion& file) {
  return {
      {"version", file.version},
      {"size", file.size},
      {"content_hash", file.deleted ? nlohmann::json(nullptr) : nlohmann::json(file.content_hash)},
      {"deleted", file.deleted},
      {"created_at", format_timestamp(file.created_at)},
      {"run_step_id", file.run_step_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(file.run_step_id)}};
}

http::Response invalid_path(std::string_view detail) {
  return http::Response::problem(400, "invalid_path", "Invalid Path", detail);
}

// The {path...} parameter in canonical form, or 400 invalid_path naming the rule it breaks.
Outcome<std::string> path_param(const http::Request& request) {
  auto normalized = security::normalize_relative_path(request.param("path"));
  if (!normalized.ok()) return invalid_path(normalized.status().message());
  return std::move(normalized).value();
}

// What a route on one file of a project intends, which decides the access it needs, whether it
// holds the project's lock and how the workspace checks the path.
enum class FileIntent { kRead, kWrite, kDelete };

// What every route on one file of a project starts from: the caller, the file's canonical path, the
// caller's project (404 for anyone else's), for a change the project's lock, and the path already
// accepted by the workspace (never followed through a symlink).
struct FileTarget {
  Principal caller;
  std::string path;
  sdk::Project project;
  std::unique_lock<std::mutex> lock;  // held for kWrite and kDelete
};

// A refusal of the workspace: a symlink, special or multiply-linked file is the user's path problem
// (400); a file/directory clash is 409; anything else is the server's.
http::Response workspace_problem(const sdk::Status& status) {
  if (status.code() == sdk::StatusCode::kPermissionDenied ||
      status.code() == sdk::StatusCode::kInvalidArgument) {
    return invalid_path("path refused by the workspace: " + status.message());
  }
  return problem_from_status(status);
}

// The project was deleted, perhaps by another node sharing the workspace root, while a file write
// ran: that node may have removed the directory before this request created it again (the path check
// or the write), so the request that finds the project gone last removes it. Storage keeps nothing
// for it: the write's transaction locks the project row, so it either lands before the deletion
// (which removes it) or fails.
http::Response project_gone(ProjectState& state, const http::Request& request, const sdk::Project& project) {
  if (const sdk::Status removed = state.workspaces.remove(project.id); !removed.ok()) {
    core::logger("api")->error("request {}: project {} is deleted but its workspace is not: {}",
                               request.request_id(), project.id, removed.to_string());
  }
  return problem_from_status(sdk::Status::not_found("project " + project.id + " does not exist"));
}

// Looks the project up once more after touching its directory: when it is gone, cleans up after the
// deletion as above and returns the 404.
std::optional<http::Response> unless_project_gone(ApiContext& context, ProjectState& state,
                                                  const http::Request& request, const Principal& caller,
                                                  const sdk::Project& project) {
  auto found = context.store<sdk::ProjectStore>(
      [&](sdk::ProjectStore& projects) { return projects.get_project(caller.user_id, project.id); });
  if (found.status().code() != sdk::StatusCode::kNotFound) return std::nullopt;
  return project_gone(state, request, project);
}

Outcome<FileTarget> file_target(ApiContext& context, ProjectState& state, const http::Request& request,
                                FileIntent intent) {
  auto auth = context.authenticate(request, intent == FileIntent::kRead ? Access::kRead : Access::kWrite);
  if (!auth) return auth.take_response();
  auto path = path_param(request);
  if (!path) return path.take_response();
  auto project = context.store<sdk::ProjectStore>(
      [&](sdk::ProjectStore& projects) { return projects.get_project(auth->user_id, request.param("id")); });
  if (!project.ok()) return problem_from_status(project.status());
  FileTarget target{std::move(*auth), std::move(*path), std::move(project).value(), {}};
  if (intent != FileIntent::kRead) target.lock = state.locks.lock(target.project.id);
  const sdk::Status accepted =
      state.workspaces.check_path(target.project.id, target.path, intent == FileIntent::kWrite);
  if (!accepted.ok()) {
    // A write's path check creates directories, which a deletion on another node may remove under it.
    if (intent == FileIntent::kWrite) {
      if (auto gone = unless_project_gone(context, state, request, target.caller, target.project))
        return std::move(*gone);
    }
    return workspace_problem(accepted);
  }
  return target;
}

http::Response workspace_write_failed(const http::Request& request, const sdk::Status& status,
                                      std::string_view what) {
  core::logger("api")->error("request {}: workspace {} failed: {}", request.request_id(), what,
                             status.to_string());
  return http::Response::problem(
      500, "workspace_write_failed", "Workspace Write Failed",
      "the change is stored, but the project's workspace copy could not be updated");
}

// Optional ?version=N (1..2^63-1), else 400.
Outcome<std::optional<std::int64_t>> version_param(const http::Request& request) {
  const auto text = request.query_param("version");
  if (!text) return std::optional<std::int64_t>();
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc() || end != text->data() + text->size() || value < 1) {
    return http::Response::problem(
        400, "validation_failed", "Bad Request", "version must be a positive integer",
        nlohmann::json::array({http::Response::field_error("/version", "must be a positive integer")}));
  }
  return std::optional<std::int64_t>(value);
}

// Names and descriptions are shown in UIs and logs: no control characters besides, for descriptions,
// line breaks and tabs.
bool has_control_characters(std::string_view text, bool allow_whitespace) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (allow_whitespace && (c == '\n' || c == '\r' || c == '\t')) continue;
    if (u < 0x20 || u == 0x7F) return true;
  }
  return false;
}

void check_text(security::FieldReader& reader, const std::optional<std::string>& value, const char* pointer,
                bool allow_whitespace) {
  if (value && has_control_characters(*value, allow_whitespace)) {
    reader.add_error(pointer, "must not contain control characters");
  }
}

void add_project_crud(http::Router& router, ApiContext& context, const std::shared_ptr<ProjectState>& state) {
  http::RouteOptions options;
  options.group = std::string(kGroupDefault);
  options.max_body_bytes = 16 * 1024;

  router.add(
      verb::post, "/api/v1/projects",
      [&context, state](http::Request& request) {
        auto auth = context.authenticate(request, Access::kWrite);
        if (!auth) return auth.take_response();
        auto body = context.json_body(request);
        if (!body) return body.take_response();
        security::FieldReader reader(*body);
        auto name = reader.required_string("/name", 1, kMaxNameChars);
        auto description = reader.optional_string("/description", 0, kMaxDescriptionChars);
        reader.reject_unknown({"name", "description"});
        check_text(reader, name, "/name", false);
        check_text(reader, description, "/description", true);
        if (!reader.ok()) return validation_problem(reader.errors());
        sdk::NewProject project;
        project.owner_id = auth->user_id;
        project.name = *name;
        project.description = description.value_or("");
        auto created = context.store<sdk::ProjectStore>(
            [&](sdk::ProjectStore& projects) { return projects.create_project(project); });
        if (!created.ok()) return problem_from_status(created.status());
        if (const sdk::Status made = state->workspaces.create(created->id); !made.ok()) {
          // Without a workspace the project is unusable for runs; take it back rather than keep half of it.
          core::logger("api")->error("request {}: cannot create the workspace of project {}: {}",
                                     request.request_id(), created->id, made.to_string());
          const sdk::Status undone = context.store<sdk::ProjectStore>([&](sdk::ProjectStore& projects) {
            return projects.delete_project(auth->user_id, created->id);
          });
          if (!undone.ok()) {
            core::logger("api")->error("request {}: cannot delete project {} again: {}", request.request_id(),
                                       created->id, undone.to_string());
          }
          return http::Response::problem(500, "workspace_write_failed", "Workspace Write Failed",
                                         "the project's workspace could not be created");
        }
        auto response = project_response(201, *created);
        response.set_header("Location", "/api/v1/projects/" + created->id);
        return response;
      },
      options);

  router.add(
      verb::get, "/api/v1/projects",
      [&context](http::Request& request) {
        auto auth = context.authenticate(request, Access::kRead);
        if (!auth) return auth.take_response();
        auto page = context.page_request(request);
        if (!page) return page.take_response();
        auto listed = context.store<sdk::ProjectStore>(
            [&](sdk::ProjectStore& projects) { return projects.list_projects(auth->user_id, *page); });
        if (!listed.ok()) return problem_from_status(listed.status());
        std::string body;
        body.reserve(64 + 256 * listed->items.size());
        http::JsonWriter json(body);
        json.begin_object().key("items").begin_array();
        for (const auto& project : listed->items)
          write_project(json, project);
        json.end_array().key("next_cursor");
        if (listed->next_cursor.empty()) {
          json.null();
        } else {
          json.string(listed->next_cursor);
        }
        json.end_object();
        return http::Response::text(200, std::move(body), "application/json");
      },
      options);

  router.add(
      verb::get, "/api/v1/projects/{id}",
      [&context](http::Request& request) {
        auto auth = context.authenticate(request, Access::kRead);
        if (!auth) return auth.take_response();
        auto project = context.store<sdk::ProjectStore>([&](sdk::ProjectStore& projects) {
          return projects.get_project(auth->user_id, request.param("id"));
        });
        if (!project.ok()) return problem_from_status(project.status());
        return project_response(200, *project);
      },
      options);

  router.add(
      verb::patch, "/api/v1/projects/{id}",
      [&context](http::Request& request) {
        auto auth = context.authenticate(request, Access::kWrite);
        if (!auth) return auth.take_response();
        auto body = context.json_body(request);
        if (!body) return body.take_response();
        security::FieldReader reader(*body);
        sdk::ProjectUpdate update;
        update.name = reader.optional_string("/name", 1, kMaxNameChars);
        update.description = reader.optional_string("/description", 0, kMaxDescriptionChars);
        reader.reject_unknown({"name", "description"});
        check_text(reader, update.name, "/name", false);
        check_text(reader, update.description, "/description", true);
        if (reader.ok() && !update.name && !update.description) {
          reader.add_error("", "give at least one of name, description");
        }
        if (!reader.ok()) return validation_problem(reader.errors());
        auto updated = context.store<sdk::ProjectStore>([&](sdk::ProjectStore& projects) {
          return projects.update_project(auth->user_id, request.param("id"), update);
        });
        if (!updated.ok()) return problem_from_status(updated.status());
        return project_response(200, *updated);
      },
      options);

  router.add(
      verb::delete_, "/api/v1/projects/{id}",
      [&context, state](http::Request& request) {
        auto auth = context.authenticate(request, Access::kWrite);
        if (!auth) return auth.take_response();
        const std::string id(request.param("id"));
        auto lock = state->locks.lock(id);
        auto project = context.store<sdk::ProjectStore>(
            [&](sdk::ProjectStore& projects) { return projects.get_project(auth->user_id, id); });
        if (!project.ok()) return problem_from_status(project.status());
        const sdk::Status deleted = context.store<sdk::ProjectStore>(
            [&](sdk::ProjectStore& projects) { return projects.delete_project(auth->user_id, id); });
        if (!deleted.ok()) return problem_from_status(deleted);
        if (const sdk::Status removed = state->workspaces.remove(project->id); !removed.ok()) {
          core::logger("api")->error("request {}: project {} is deleted but its workspace is not: {}",
                                     request.request_id(), project->id, removed.to_string());
        }
        return http::Response::no_content();
      },
      options);
}

void add_file_routes(http::Router& router, ApiContext& context, const std::shared_ptr<ProjectState>& state) {
  http::RouteOptions read_options;
  read_options.group = std::string(kGroupFiles);
  read_options.max_body_bytes = 0;
  http::RouteOptions write_options;
  write_options.group = std::string(kGroupFiles);
  write_options.max_body_bytes = kMaxFileBytes;

  router.add(
      verb::get, "/api/v1/projects/{id}/files",
      [&context](http::Request& request) {
        auto auth = context.authenticate(request, Access::kRead);
        if (!auth) return auth.take_response();
        auto page = context.page_request(request);
        if (!page) return page.take_response();
        const std::string prefix = request.query_param("prefix").value_or("");
        auto listed = context.store<sdk::FileStore>([&](sdk::FileStore& files) {
          return files.list_files(auth->user_id, request.param("id"), prefix, *page);
        });
        if (!listed.ok()) return problem_from_status(listed.status());
        nlohmann::json items = nlohmann::json::array();
        for (const auto& file : listed->items)
          items.push_back(file_json(file));
        return http::Response::json(200, page_json(std::move(items), listed->next_cursor));
      },
      read_options);

  router.add(
      verb::get, "/api/v1/projects/{id}/files/{path...}",
      [&context, state](http::Request& request) {
        auto target = file_target(context, *state, request, FileIntent::kRead);
        if (!target) return target.take_response();
        auto version = version_param(request);
        if (!version) return version.take_response();
        const Principal& auth = target->caller;
        const std::string& path = target->path;
        const sdk::Project& project = target->project;
        auto file = context.store<sdk::FileStore>(
            [&](sdk::FileStore& files) { return files.get_file(auth.user_id, project.id, path, *version); });
        if (!file.ok()) return problem_from_status(file.status());
        http::Response response;
        response.status = 200;
        response.content_type = content_type_for(path, file->content);
        response.body = std::move(file->content);
        response.set_header("ETag", "\"" + file->version.content_hash + "\"");
        response.set_header("X-File-Version", std::to_string(file->version.version));
        response.set_header("Content-Security-Policy", std::string(kFileContentPolicy));
        return response;
      },
      read_options);

  router.add(
      verb::put, "/api/v1/projects/{id}/files/{path...}",
      [&context, state](http::Request& request) {
        auto target = file_target(context, *state, request, FileIntent::kWrite);
        if (!target) return target.take_response();
        const Principal& auth = target->caller;
        const std::string& path = target->path;
        const sdk::Project& project = target->project;
        if (auto refusal =
                quota_refusal(context, *state, auth.user_id, project.id, path, request.body().size()))
          return std::move(*refusal);
        auto stored = context.store<sdk::FileStore>([&](sdk::FileStore& files) {
          return files.put_file(auth.user_id, project.id, path, request.body(), "");
        });
        if (!stored.ok()) {
          if (stored.status().code() == sdk::StatusCode::kNotFound)
            return project_gone(*state, request, project);
          return problem_from_status(stored.status());
        }
        const sdk::Status written = state->workspaces.write_file(project.id, path, request.body());
        // A deletion on another node may have removed the directory under the write above, or before
        // it made the directory again; that deletion committed before its removal, so looking once
        // more after the write catches it.
        if (auto gone = unless_project_gone(context, *state, request, auth, project)) return std::move(*gone);
        if (!written.ok()) {
          return written.code() == sdk::StatusCode::kPermissionDenied
                     ? workspace_problem(written)
                     : workspace_write_failed(request, written, "write");
        }
        return http::Response::json(200, file_json(*stored));
      },
      write_options);

  router.add(
      verb::delete_, "/api/v1/projects/{id}/files/{path...}",
      [&context, state](http::Request& request) {
        auto target = file_target(context, *state, request, FileIntent::kDelete);
        if (!target) return target.take_response();
        const Principal& auth = target->caller;
        const std::string& path = target->path;
        const sdk::Project& project = target->project;
        auto deleted = context.store<sdk::FileStore>(
            [&](sdk::FileStore& files) { return files.delete_file(auth.user_id, project.id, path, ""); });
        if (!deleted.ok()) return problem_from_status(deleted.status());
        if (const sdk::Status removed = state->workspaces.remove_file(project.id, path); !removed.ok()) {
          return workspace_write_failed(request, removed, "delete");
        }
        return http::Response::no_content();
      },
      read_options);

  router.add(
      verb::get, "/api/v1/projects/{id}/history/{path...}",
      [&context](http::Request& request) {
        auto auth = context.authenticate(request, Access::kRead);
        if (!auth) return auth.take_response();
        auto path = path_param(request);
        if (!path) return path.take_response();
        auto page = context.page_request(request);
        if (!page) return page.take_response();
        auto versions = context.store<sdk::FileStore>([&](sdk::FileStore& files) {
          return files.list_file_versions(auth->user_id, request.param("id"), *path, *page);
        });
        if (!versions.ok()) return problem_from_status(versions.status());
        nlohmann::json items = nlohmann::json::array();
        for (const auto& version : versions->items)
          items.push_back(version_json(version));
        auto document = page_json(std::move(items), versions->next_cursor);
        document["path"] = *path;
        return http::Response::json(200, document);
      },
      read_options);

  router.add(
      verb::get, "/api/v1/projects/{id}/export",
      [&context, state](http::Request& request) {
        auto auth = context.authenticate(request, Access::kRead);
        if (!auth) return auth.take_response();
        auto project = context.store<sdk::ProjectStore>([&](sdk::ProjectStore& projects) {
          return projects.get_project(auth->user_id, request.param("id"));
        });
        if (!project.ok()) return problem_from_status(project.status());
        auto slot = state->exports.try_enter(auth->user_id);
        if (const auto* refusal = std::get_if<ExportGate::Refusal>(&slot)) {
          return *refusal == ExportGate::Refusal::kUserBusy
                     ? busy(429, "you have " + std::to_string(state->exports.per_user()) +
                                     " exports running already; retry when one has finished")
                     : busy(503, "the server runs " + std::to_string(state->exports.total()) +
                                     " exports already; retry shortly");
        }
        // The listing first: its sizes refuse a project over the limit before any content is read, and
        // the versions it names are immutable, so the content read next has exactly those sizes.
        const std::uint64_t max_bytes = state->limits.export_max_bytes;
        std::vector<sdk::FileVersion> entries;
        std::uint64_t total = 0;
        sdk::PageRequest page;
        page.limit = sdk::kMaxPageLimit;
        do {
          auto listed = context.store<sdk::FileStore>(
              [&](sdk::FileStore& files) { return files.list_files(auth->user_id, project->id, "", page); });
          if (!listed.ok()) return problem_from_status(listed.status());
          for (auto& entry : listed->items) {
            total += static_cast<std::uint64_t>(entry.size);
            entries.push_back(std::move(entry));
          }
          page.cursor = listed->next_cursor;
        } while (!page.cursor.empty());
        if (total > max_bytes) {
          return http::Response::problem(413, "export_too_large", "Export Too Large",
                                         "the project's files add up to " + std::to_string(total) +
                                             " bytes, over the export limit of " + std::to_string(max_bytes) +
                                             " bytes (limits.export_max_bytes)");
        }
        std::string archive;
        TarGzWriter writer(archive);
        for (const auto& entry : entries) {
          auto file = context.store<sdk::FileStore>([&](sdk::FileStore& files) {
            return files.get_file(auth->user_id, project->id, entry.path, entry.version);
          });
          if (file.status().code() == sdk::StatusCode::kNotFound) continue;  // deleted meanwhile
          if (!file.ok()) return problem_from_status(file.status());
          // Names come from storage, which only holds canonical paths; re-checked all the same, since
          // an archive entry is a path on the user's disk.
          auto name = security::normalize_relative_path(file->version.path);
          if (!name.ok()) return problem_from_status(sdk::Status::data_loss("stored path is not canonical"));
          const auto mtime =
              std::chrono::duration_cast<std::chrono::seconds>(file->version.created_at.time_since_epoch())
                  .count();
          if (const sdk::Status added = writer.add_file(*name, file->content, mtime); !added.ok()) {
            return problem_from_status(added);
          }
        }
        if (const sdk::Status finished = writer.finish(); !finished.ok())
          return problem_from_status(finished);
        http::Response response;
        response.status = 200;
        response.content_type = "application/gzip";
        response.body = std::move(archive);
        response.set_header("Content-Disposition",
                            "attachment; filename=\"project-" + project->id + ".tar.gz\"");
        return response;
      },
      read_options);
}

}  // namespace

void add_project_routes(http::Router& router, ApiContext& context) {
  auto state = std::make_shared<ProjectState>(context.config().workspace_root, context.workspace_observer(),
                                              context.config().limits);
  add_project_crud(router, context, state);
  add_file_routes(router, context, state);
}

}  // namespace samokoder::api

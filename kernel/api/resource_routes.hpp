// The resource modules of /api/v1: provider keys (BYOK), projects with their files, version history and
// export, and the OpenAPI document. Registered by api::add_routes next to the identity modules.
//
//   add_key_routes       PUT/GET/DELETE /api/v1/keys/{provider}, GET /api/v1/keys
//   add_project_routes   POST/GET /api/v1/projects, GET/PATCH/DELETE /api/v1/projects/{id},
//                        GET /api/v1/projects/{id}/files, GET/PUT/DELETE
//                        /api/v1/projects/{id}/files/{path...}, GET /api/v1/projects/{id}/history/{path...},
//                        GET /api/v1/projects/{id}/export
//   add_openapi_routes   GET /api/v1/openapi.json (see openapi.hpp)
//
// Every handler but the OpenAPI one authenticates (ApiContext::authenticate) and passes the caller's
// user id to storage as the owner, so another user's project, file or key answers 404 exactly like
// one that never existed. User-supplied file paths go through security::normalize_relative_path and
// the workspace's fd-based I/O (workspace.hpp).
//
// Ownership: handlers reference `context`, which must outlive the router; each module keeps its own
// state (workspaces, per-project locks) in a shared_ptr the handlers hold.
// Thread-safety: call once while building the router; handlers run concurrently on workers.
#pragma once

#include <cstddef>

#include "api/context.hpp"
#include "http/router.hpp"

namespace samokoder::api {

// Body limit of PUT /api/v1/projects/{id}/files/{path...} (route group "files").
inline constexpr std::size_t kMaxFileBytes = 10 * 1024 * 1024;
inline constexpr std::string_view kGroupFiles = "files";

void add_key_routes(http::Router& router, ApiContext& context);
void add_project_routes(http::Router& router, ApiContext& context);
void add_openapi_routes(http::Router& router, ApiContext& context);

}  // namespace samokoder::api

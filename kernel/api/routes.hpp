// The /api/v1 routes of the kernel's own API (identity, tokens, admin, projects, files, keys), one
// module per area, registered together by add_routes. Every module exposes
// `void add_<area>_routes(http::Router&, ApiContext&)`; add_routes calls them all in a fixed order.
//
// Ownership: the router keeps handlers that reference `context`, which must outlive it.
// Thread-safety: call once while building the router, before the server starts.
#pragma once

#include "api/context.hpp"
#include "http/router.hpp"

namespace samokoder::api {

void add_routes(http::Router& router, ApiContext& context);

// The identity modules (auth_routes.cpp, token_routes.cpp, admin_routes.cpp).
void add_auth_routes(http::Router& router, ApiContext& context);
void add_token_routes(http::Router& router, ApiContext& context);
void add_admin_routes(http::Router& router, ApiContext& context);

}  // namespace samokoder::api

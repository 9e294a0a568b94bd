// The preview routes (docs/api.md "Previews"): start, read and stop a project's live preview, and read
// or follow its log. Owner-only like projects: another user's preview is 404.
//
// The preview itself is never served here: GET answers its `url` on the preview origin (proxy.hpp)
// with a fresh grant for the caller, which the browser trades for a cookie of that origin.
//
// Ownership: the handlers capture the context and the manager by reference; both outlive the router.
#pragma once

#include "api/context.hpp"
#include "http/router.hpp"
#include "previews/manager.hpp"

namespace samokoder::previews {

void add_preview_routes(http::Router& router, api::ApiContext& context, PreviewManager& manager);

}  // namespace samokoder::previews

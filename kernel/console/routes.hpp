// The web console's routes: the single page at "/" and its files at "/assets/{path...}", served from
// memory (assets.hpp) on the API's own origin, so the console's requests are same-origin and its
// cookies are the API's.
//
//   GET /                   index.html; Cache-Control: no-cache (revalidated on each visit, so a new
//                           build is picked up at once) and the console's Content-Security-Policy
//   GET /assets/{path...}   a built file; a content-hashed name is cached for a year (immutable)
//
// Every answer carries a strong ETag (If-None-Match answers 304) and Vary: Accept-Encoding, and the
// build's brotli or gzip copy when the client accepts it. An unknown path is the server's usual 404.
// The routes are in the unlimited "ops" rate-limit group: they touch no storage and cost a map lookup.
//
// Ownership: the handlers share the assets. Thread-safety: the handlers run concurrently on the I/O
// threads (Dispatch::kInline: they never block).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "console/assets.hpp"
#include "http/router.hpp"

namespace samokoder::console {

// The Content-Security-Policy of the console's page. Scripts, styles, images, fonts and requests come
// from the console's own origin only; `frame_source` (a CSP source expression, see
// preview_frame_source) is the one other origin the page may show, in a frame.
std::string page_policy(std::string_view frame_source);

// The CSP source expression matching every preview origin of a previews.public_url whose "{port}" is
// already filled in: the label holding "{project}" becomes "*" when it is the host's first label
// ("http://p-{project}.localhost:8081" gives "http://*.localhost:8081"), a "{project}" in the path
// leaves the origin as it is, and any other place falls back to the scheme ("https:"), which CSP
// allows since host wildcards may only lead a host name.
std::string preview_frame_source(std::string_view public_url);

void add_console_routes(http::Router& router, std::shared_ptr<const ConsoleAssets> assets,
                        std::string page_policy);

}  // namespace samokoder::console

// The OpenAPI 3.1 description of the HTTP API, served at GET /api/v1/openapi.json.
//
// The document is kernel/api/openapi.json, compiled into the binary at build time (embed_file.cmake),
// and it is the single source of truth for docs/api.md (scripts/openapi-to-md.py renders its
// reference section). tests/api_resources checks that it and the router agree both ways: every
// registered route is documented and every documented path and method is registered.
//
// Ownership: the parsed document is a process-wide immutable value. Thread-safety: safe from any thread
// (parsed once, on first use, under a function-local static).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "api/context.hpp"
#include "http/router.hpp"

namespace samokoder::api {

// The parsed document. Throws std::logic_error at first use if the embedded text is not JSON (the
// build and the consistency test catch that long before a server starts).
const nlohmann::json& openapi_document();

// Router pattern -> OpenAPI path template: "{path...}" becomes "{path}" (OpenAPI has no greedy
// parameter; the document says the value may contain '/').
std::string openapi_path(std::string_view router_pattern);

}  // namespace samokoder::api

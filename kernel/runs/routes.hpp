// The runs routes (docs/api.md "Runs"): start a run in a project, read runs, their steps and their
// events (as a page, over SSE or over WebSocket), answer a run's question, talk to it, cancel and
// resume it. Owner-only like projects: another user's run is 404.
//
// Streams: GET /runs/{id}/events answers text/event-stream and resumes after Last-Event-ID (or
// ?after=); GET /runs/{id}/ws upgrades to a WebSocket carrying the same JSON documents. Both
// authenticate like every route (Authorization header or the session cookie, never a token in the
// URL); the server refuses a WebSocket handshake from a foreign Origin before the route runs.
//
// Ownership: the handlers capture the context and the engine by reference; both outlive the router.
#pragma once

#include "api/context.hpp"
#include "http/router.hpp"
#include "runs/engine.hpp"

namespace samokoder::runs {

void add_runs_routes(http::Router& router, api::ApiContext& context, RunEngine& engine);

}  // namespace samokoder::runs

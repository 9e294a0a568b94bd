// The /api/v1 routes of the LLM layer: what the caller's model use cost and which models they can use.
//
//   GET /api/v1/usage            totals by provider, model and UTC day over a range of days (default the
//                                last 30), with the budgets in force and what is used of them; admins
//                                may ask for one user (?user_id=) or every user (?all_users=true)
//   GET /api/v1/usage/requests   every recorded request, newest first, paginated (admins: ?user_id=)
//   GET /api/v1/models           each configured provider's models, live from its endpoint with the
//                                caller's key where it can be asked (LlmGateway::models), marked with
//                                the roles that use them and their price
//
// They live beside the gateway rather than in kernel/api because they need it; they use ApiContext for
// everything else (authentication, storage, problem+json) like every route module.
//
// Ownership: the handlers reference `context` and `gateway`, which must outlive the router.
// Thread-safety: call once while building the router; the handlers run on the request pool.
#pragma once

#include "api/context.hpp"
#include "http/router.hpp"
#include "llm/gateway.hpp"

namespace samokoder::llm {

void add_llm_routes(http::Router& router, api::ApiContext& context, LlmGateway& gateway);

}  // namespace samokoder::llm

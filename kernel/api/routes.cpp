#include "api/routes.hpp"

#include "api/resource_routes.hpp"

namespace samokoder::api {

void add_routes(http::Router& router, ApiContext& context) {
  add_auth_routes(router, context);
  add_token_routes(router, context);
  add_admin_routes(router, context);
  add_key_routes(router, context);
  add_project_routes(router, context);
  add_openapi_routes(router, context);
}

}  // namespace samokoder::api

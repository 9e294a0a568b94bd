// The OpenAPI document and the router agree both ways, the document is served, and docs/api.md
// covers every documented operation.
#include "api/openapi.hpp"

#include <fstream>
#include <iterator>
#include <set>

#include "http/router.hpp"
#include "resources_fixture.hpp"

namespace samokoder::resources_test {
namespace {

using boost::beast::http::verb;

const std::set<std::string> kHttpMethods = {"get",     "put",  "post",  "delete",
                                            "options", "head", "patch", "trace"};

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string uppercase(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// "get /api/v1/projects/{id}" for every registered route.
std::set<std::string> registered_operations(const http::Router& router) {
  std::set<std::string> out;
  for (const auto& route : router.routes()) {
    out.insert(lowercase(boost::beast::http::to_string(route.method)) + " " +
               api::openapi_path(route.pattern));
  }
  return out;
}

std::set<std::string> documented_operations(const nlohmann::json& document) {
  std::set<std::string> out;
  for (const auto& [path, item] : document["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      if (kHttpMethods.contains(method)) out.insert(method + " " + path);
    }
  }
  return out;
}

class OpenApiTest : public ResourcesApiTest {};

TEST_F(OpenApiTest, EveryRouteIsDocumentedAndEveryDocumentedOperationIsRegistered) {
  ASSERT_NE(app_->router(), nullptr);
  const auto registered = registered_operations(*app_->router());
  const auto documented = documented_operations(api::openapi_document());
  for (const auto& op : registered)
    EXPECT_TRUE(documented.contains(op)) << "not documented: " << op;
  for (const auto& op : documented)
    EXPECT_TRUE(registered.contains(op)) << "not registered: " << op;
  EXPECT_GE(registered.size(), 20u);
}

TEST_F(OpenApiTest, DocumentIsServedAndWellFormed) {
  const auto response = client_->get("/api/v1/openapi.json");
  ASSERT_EQ(response.status, 200u);
  EXPECT_EQ(response.header("Content-Type"), "application/json");
  const auto document = response.json();
  EXPECT_EQ(document, api::openapi_document());
  EXPECT_EQ(document["openapi"], "3.1.0");
  const auto& components = document["components"];
  EXPECT_EQ(components["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
  EXPECT_EQ(components["securitySchemes"]["cookieAuth"]["in"], "cookie");
  EXPECT_TRUE(components["schemas"].contains("Problem"));

  std::set<std::string> operation_ids;
  for (const auto& [path, item] : document["paths"].items()) {
    // Every {param} in a path is declared, directly or by reference.
    for (const auto& [method, operation] : item.items()) {
      if (!kHttpMethods.contains(method)) continue;
      const std::string where = method + " " + path;
      ASSERT_TRUE(operation.contains("operationId")) << where;
      EXPECT_TRUE(operation_ids.insert(operation["operationId"].get<std::string>()).second) << where;
      ASSERT_TRUE(operation.contains("responses")) << where;
      std::set<std::string> declared;
      for (const auto& parameter : operation.value("parameters", nlohmann::json::array())) {
        const nlohmann::json* p = &parameter;
        if (parameter.contains("$ref")) {
          const std::string ref = parameter["$ref"];
          p = &document.at(nlohmann::json::json_pointer(ref.substr(1)));
        }
        if ((*p)["in"] == "path") declared.insert((*p)["name"].get<std::string>());
      }
      for (std::size_t open = path.find('{'); open != std::string::npos; open = path.find('{', open + 1)) {
        const std::string name = path.substr(open + 1, path.find('}', open) - open - 1);
        EXPECT_TRUE(declared.contains(name)) << where << " lacks path parameter " << name;
      }
      // Error answers are problem+json (but /readyz's 503, a health report for load balancers).
      for (const auto& [code, answer] : operation["responses"].items()) {
        if ((code[0] != '4' && code[0] != '5') || path == "/readyz") continue;
        const nlohmann::json* r = &answer;
        if (answer.contains("$ref"))
          r = &document.at(nlohmann::json::json_pointer(answer["$ref"].get<std::string>().substr(1)));
        EXPECT_TRUE((*r)["content"].contains("application/problem+json")) << where << " " << code;
      }
    }
  }
}

// The "(admin)" mark of the endpoint index comes from x-samokoder-admin; it must name exactly the
// operations that refuse a signed-in user who is not an administrator.
TEST_F(OpenApiTest, AdminMarkNamesExactlyTheOperationsThatRefuseNonAdmins) {
  const User user = sign_up("not-an-admin@example.com");
  std::size_t admin_operations = 0;
  for (const auto& [path, item] : api::openapi_document()["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      if (!kHttpMethods.contains(method) || operation.value("security", nlohmann::json::array()).empty())
        continue;
      std::string target = path;
      for (std::size_t open = target.find('{'); open != std::string::npos; open = target.find('{')) {
        target.replace(open, target.find('}', open) - open + 1, "019b000000007000800000000000abcd");
      }
      const bool writes = method == "post" || method == "put" || method == "patch";
      const auto response =
          call(boost::beast::http::string_to_verb(uppercase(method)), target, user, writes ? "{}" : "");
      const bool refused_as_non_admin =
          response.status == 403 && response.json().value("type", "").ends_with("/admin_required");
      const bool marked = operation.value("x-samokoder-admin", false);
      admin_operations += marked ? 1 : 0;
      EXPECT_EQ(marked, refused_as_non_admin)
          << method << " " << path << " answered " << response.status << " " << response.body;
    }
  }
  EXPECT_GE(admin_operations, 7u);
}

TEST_F(OpenApiTest, ApiReferenceCoversEveryDocumentedOperation) {
  std::ifstream in(std::string(SAMOKODER_SOURCE_DIR) + "/docs/api.md");
  const std::string markdown((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(markdown.empty());
  for (const auto& [path, item] : api::openapi_document()["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      if (!kHttpMethods.contains(method)) continue;
      const std::string heading = "`" + uppercase(method) + " " + path + "`";
      EXPECT_NE(markdown.find(heading), std::string::npos) << "docs/api.md does not mention " << heading;
    }
  }
}

}  // namespace
}  // namespace samokoder::resources_test

// An agent plugin written against the installed SDK only, as docs/sdk.md shows. Its greeting comes from
// a child process run with limits, and its news from a streamed HTTPS answer, both through the host
// services: the out-of-tree build proves a plugin needs nothing else to run programs or reach an API.
#include <samokoder/sdk/agent.hpp>
#include <samokoder/sdk/http_client.hpp>
#include <samokoder/sdk/process.hpp>

namespace {

namespace sdk = samokoder::sdk;

class GreeterAgent final : public sdk::Agent {
 public:
  sdk::Status init(sdk::HostServices& host) override {
    host_ = &host;
    name_ = host.config().value("name", std::string("world"));
    news_url_ = host.config().value("news_url", std::string());
    return {};
  }
  std::string_view role() const noexcept override { return "greeter"; }
  bool wants(const nlohmann::json& state) const override { return !state.value("done", false); }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext&) override {
    // The shell prints the greeting, then the open-files limit it runs under.
    sdk::ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", "echo \"hello, $1\"; ulimit -n", "sh", name_};
    spec.limits.address_space_bytes = 256ULL * 1024 * 1024;
    spec.limits.open_files = 64;
    spec.timeout = std::chrono::seconds(10);
    auto echoed = host_->processes().run(spec, sdk::never_cancelled());
    if (!echoed.ok()) return echoed.status();
    if (!echoed->succeeded()) return sdk::Status::internal("greeting child failed");
    const std::string& out = echoed->stdout_data;
    const auto newline = out.find('\n');
    if (newline == std::string::npos) return sdk::Status::internal("greeting child printed no line");
    nlohmann::json state = {
        {"greeting", out.substr(0, newline)},
        {"child_open_files", out.substr(newline + 1, out.find('\n', newline + 1) - newline - 1)}};
    if (!news_url_.empty()) {
      auto news = fetch_news();
      if (!news.ok()) return news.status();
      state["news"] = *news;
    }
    return sdk::AgentStepResult{std::move(state), "greeted"};
  }

 private:
  // Streams the answer piece by piece, as an LLM provider reads server-sent events.
  sdk::Result<nlohmann::json> fetch_news() {
    sdk::HttpRequest request;
    request.url = news_url_;
    std::string body;
    int pieces = 0;
    request.on_body = [&](std::string_view piece) {
      body.append(piece);
      ++pieces;
      return true;
    };
    auto response = host_->http().send(request, sdk::never_cancelled());
    if (!response.ok()) return response.status();
    if (response->status != 200)
      return sdk::Status::unavailable("news answered " + std::to_string(response->status));
    return nlohmann::json{{"body", body}, {"pieces", pieces}};
  }

  sdk::HostServices* host_ = nullptr;
  std::string name_;
  std::string news_url_;
};

}  // namespace

SAMOKODER_PLUGIN(GreeterAgent, "agent.greeter", "0.1.0",
                 "Greets through a child process and reads news over HTTPS, built out of tree")

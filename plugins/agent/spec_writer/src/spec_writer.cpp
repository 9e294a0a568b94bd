// agent.spec_writer: the first agent of a run and the one a user's later message reaches (docs/
// pipeline.md). Without a spec it reviews the description, asks the user up to three questions when it
// is too vague to build from, and writes the product spec every later agent works from. With a spec,
// each new message of the inbox becomes a feature: the spec is updated and an unplanned epic appended,
// which the tech lead plans; a finished run goes on with it.
#include <algorithm>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <samokoder/agent_common/prompted_agent.hpp>
#include <samokoder/agent_common/run_state.hpp>

namespace {

namespace sdk = samokoder::sdk;
namespace common = samokoder::agent_common;

constexpr std::size_t kMaxQuestions = 3;

// A spec is the longest answer this agent gets; the default budget would cut a detailed one short.
common::AskOptions long_answer() {
  common::AskOptions options;
  options.max_tokens = 8192;
  return options;
}

std::int64_t inbox_handled(const nlohmann::json& state) {
  const auto it = state.find("inbox_handled");
  return it != state.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

struct Message {
  std::int64_t seq = 0;
  std::string text;
};

// The inbox's messages the spec writer has not taken yet, in inbox order.
std::vector<Message> unhandled_messages(const nlohmann::json& state) {
  std::vector<Message> messages;
  const auto inbox = state.find("inbox");
  if (inbox == state.end() || !inbox->is_array()) return messages;
  const std::int64_t handled = inbox_handled(state);
  for (const auto& message : *inbox) {
    if (!message.is_object()) continue;
    const auto seq = message.find("seq");
    if (seq == message.end() || !seq->is_number_integer() || seq->get<std::int64_t>() <= handled) continue;
    messages.push_back({seq->get<std::int64_t>(), message.value("text", std::string())});
  }
  return messages;
}

nlohmann::json texts_of(const std::vector<Message>& messages) {
  nlohmann::json texts = nlohmann::json::array();
  for (const auto& message : messages)
    texts.push_back(message.text);
  return texts;
}

bool is_blank(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

class SpecWriter final : public common::PromptedAgent {
 public:
  std::string_view role() const noexcept override { return "spec_writer"; }

  bool wants(const nlohmann::json& state) const override {
    if (!state.is_object()) return false;
    return !common::has_text(state, "/spec/description") || !unhandled_messages(state).empty();
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    try {
      if (!common::has_text(context.state(), "/spec/description")) return write_spec(context);
      return add_feature(context);
    } catch (const std::exception& error) {
      return sdk::Status::internal(std::string("spec_writer: ") + error.what());
    }
  }

 private:
  sdk::Result<sdk::AgentStepResult> write_spec(sdk::AgentContext& context) const {
    nlohmann::json next = context.state();
    const std::string description = common::text_at(next, "/description");
    const auto messages = unhandled_messages(next);
    if (is_blank(description) && messages.empty())
      return sdk::Status::failed_precondition("the run has no description to write a spec from");
    const nlohmann::json message_texts = texts_of(messages);

    auto review = ask(context, "spec_review", {{"description", description}, {"messages", message_texts}});
    if (!review.ok()) return review.status();
    const std::string complexity = review->value("complexity", std::string());
    if (complexity != "simple" && complexity != "moderate" && complexity != "hard")
      return sdk::Status::invalid_argument("spec_review answered complexity \"" + complexity +
                                           "\"; expected simple, moderate or hard");

    // Every question is asked in this step, in order: an unanswered one pauses it, and the re-run gets
    // the earlier answers back from the record, so the user sees one question at a time.
    nlohmann::json questions_and_answers = nlohmann::json::array();
    const auto questions = review->find("questions");
    if (!review->value("clear", true) && questions != review->end() && questions->is_array()) {
      std::vector<std::string> asked;
      for (const auto& question : *questions)
        if (question.is_string() && !is_blank(question.get<std::string>()) && asked.size() < kMaxQuestions)
          asked.push_back(question.get<std::string>());
      for (std::size_t i = 0; i < asked.size(); ++i) {
        sdk::UserQuestion question;
        question.id = "clarify." + std::to_string(i + 1);
        question.text = "Before I write the spec of your app (question " + std::to_string(i + 1) + " of " +
                        std::to_string(asked.size()) + "): " + asked[i];
        auto answer = context.ask_user(question);
        if (!answer.ok()) return answer.status();
        questions_and_answers.push_back({{"question", asked[i]}, {"answer", answer->text}});
      }
    }

    auto written = ask(context, "spec",
                       {{"description", description},
                        {"messages", message_texts},
                        {"questions_and_answers", questions_and_answers},
                        {"complexity", complexity}},
                       long_answer());
    if (!written.ok()) return written.status();
    const std::string spec = written->value("spec", std::string());
    if (is_blank(spec)) return sdk::Status::invalid_argument("the spec the model wrote is empty");
    std::string summary = written->value("summary", std::string());
    if (is_blank(summary)) summary = "wrote the spec";

    next["spec"] = {{"original_description", description},
                    {"description", spec},
                    {"complexity", complexity},
                    {"questions", questions_and_answers}};
    std::int64_t handled = std::max(inbox_handled(next), next.value("inbox_seq", std::int64_t{0}));
    for (const auto& message : messages)
      handled = std::max(handled, message.seq);
    next["inbox_handled"] = handled;
    if (auto emitted = context.emit_event(
            "spec.written", {{"complexity", complexity}, {"questions", questions_and_answers.size()}});
        !emitted.ok())
      return emitted;
    return sdk::AgentStepResult{std::move(next), "spec: " + summary};
  }

  sdk::Result<sdk::AgentStepResult> add_feature(sdk::AgentContext& context) const {
    nlohmann::json next = context.state();
    const auto messages = unhandled_messages(next);
    if (messages.empty())
      return sdk::Status::failed_precondition("there is no new message to turn into a feature");

    nlohmann::json finished = nlohmann::json::array();
    if (const auto tasks = next.find("tasks"); tasks != next.end() && tasks->is_array())
      for (const auto& task : *tasks)
        if (task.is_object() && task.value("status", std::string()) == common::task_status::kDone)
          finished.push_back(task.value("description", std::string()));

    auto answer = ask(context, "feature",
                      {{"spec", common::text_at(next, "/spec/description")},
                       {"messages", texts_of(messages)},
                       {"finished_tasks", finished}},
                      long_answer());
    if (!answer.ok()) return answer.status();
    const std::string spec = answer->value("spec", std::string());
    const std::string feature = answer->value("feature", std::string());
    std::string name = answer->value("name", std::string());
    if (is_blank(spec)) return sdk::Status::invalid_argument("the updated spec the model wrote is empty");
    if (is_blank(feature)) return sdk::Status::invalid_argument("the model described no feature to build");
    if (is_blank(name)) name = "Feature";

    auto& epics = common::array_member(next, "epics");
    const std::int64_t id = common::next_id(epics);
    epics.push_back({{"id", id},
                     {"name", name},
                     {"source", "feature"},
                     {"description", feature},
                     {"planned", false},
                     {"completed", false}});
    next["spec"]["description"] = spec;
    std::int64_t handled = inbox_handled(next);
    for (const auto& message : messages)
      handled = std::max(handled, message.seq);
    next["inbox_handled"] = handled;
    // A run that had finished goes on: the tech lead plans the new epic and ends the run again.
    next.erase("done");
    next.erase("summary");
    if (auto emitted = context.emit_event("spec.updated", {{"epic", id}, {"name", name}}); !emitted.ok())
      return emitted;
    return sdk::AgentStepResult{std::move(next), "feature: " + name};
  }
};

}  // namespace

SAMOKODER_PLUGIN(SpecWriter, "agent.spec_writer", "1.0.0",
                 "Writes the product spec from the description (asking when it is vague) and turns the "
                 "user's messages into feature epics")

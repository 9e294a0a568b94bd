// TodoAppScript: the scripted model of the end-to-end tests and the pipeline bench. It plays every
// agent's model for one description, "a to-do list with add, list and delete over a JSON API and a
// page", the way a good model would, plus the slips a real one makes: the first server.js it writes
// does not parse, so the executor's check fails and the error handler, a fix iteration and the code
// review run too. A call is recognised by its JSON output name (the agent's prompt name,
// docs/pipeline.md) and, where one name serves several tasks, by the task's text in the prompt.
//
// The same request body always gets the same answer, so a call repeated after a crash (it was in
// flight, so never recorded) is answered as before.
//
// Ownership: plain value. Thread-safety: answer() may be called from the model server's threads at
// once (internally locked).
#pragma once

#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "model_server.hpp"

namespace samokoder::testing {

class TodoAppScript {
 public:
  // What the e2e test sends and expects.
  static constexpr const char* kDescription =
      "a to-do list with add, list and delete over a JSON API and a page";
  static constexpr const char* kClarifyingQuestion = "Should the to-dos survive a restart of the app?";
  static constexpr const char* kChangeRequest = "make the add button blue";
  static constexpr const char* kPageTitle = "My to-do list";

  // The reply to one completion request; a call it has no answer for gets a 500 naming it, which fails
  // the run loudly.
  ModelReply answer(const ModelCall& call);

  // The JSON output name a request asked for ("" for none).
  static std::string call_name(const ModelCall& call);

 private:
  nlohmann::json answer_json(const std::string& name, const std::string& prompt);

  std::mutex mutex_;
  std::map<std::string, std::size_t> file_versions_;  // path -> answers given for it
  std::map<std::string, ModelReply> given_;           // request body -> the reply it got
};

}  // namespace samokoder::testing

#!/usr/bin/env bash
# make smoke: the LLM layer and the agent pipeline against real providers, outside CI. For each provider whose key (or URL) is
# in the environment, `samokoder llm ping` sends one short prompt through the real gateway and plugin
# and prints the answer, latency and tokens; a provider without one is reported as SKIPPED, loudly,
# so a green run without keys is never mistaken for a tested one. Then scripts/smoke_pipeline.py runs
# the end-to-end test's description through the whole pipeline with the first provider that is set.
#
#   OPENAI_API_KEY      (model: SMOKE_OPENAI_MODEL, default gpt-4o-mini; OPENAI_BASE_URL is honoured)
#   ANTHROPIC_API_KEY   (model: SMOKE_ANTHROPIC_MODEL, default claude-3-5-haiku-latest)
#   OLLAMA_URL          e.g. http://127.0.0.1:11434 (model: SMOKE_OLLAMA_MODEL, default llama3.2)
#
# The requests are recorded in a throw-away database under build/smoke/, not the server's.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
samokoder="$BUILD_DIR/bin/samokoder"
work="$BUILD_DIR/smoke"
rm -rf "$work" && mkdir -p "$work"

# The shipped config with its database moved aside and an "ollama" provider (llm.openai, no key).
/usr/bin/python3 - "$work" "${OLLAMA_URL:-}" <<'PY'
import json, sys
work, ollama = sys.argv[1], sys.argv[2].rstrip("/")
config = json.load(open("config/samokoder.json"))
config.pop("$schema", None)
config["runtime_dir"] = work + "/run"
config["workspace_root"] = work + "/workspaces"
config["log"]["access_log"] = False
for plugin in config["plugins"]:
    if plugin["id"] == "storage.sqlite":
        plugin["config"]["path"] = work + "/smoke.db"
if ollama:
    config["llm"] = {"providers": {"ollama": {"plugin": "llm.openai", "base_url": ollama + "/v1",
                                              "key_required": False}}}
json.dump(config, open(work + "/config.json", "w"), indent=2)
PY

ran=0 failed=0 skipped=()
ping() {  # provider model
  echo "== $1/$2"
  if "$samokoder" llm ping --provider "$1" --model "$2" --config "$work/config.json"; then
    ran=$((ran + 1))
  else
    failed=$((failed + 1))
  fi
}
if [[ -n "${OPENAI_API_KEY:-}" ]]; then ping openai "${SMOKE_OPENAI_MODEL:-gpt-4o-mini}"; else skipped+=(openai); fi
if [[ -n "${ANTHROPIC_API_KEY:-}" ]]; then
  ping anthropic "${SMOKE_ANTHROPIC_MODEL:-claude-3-5-haiku-latest}"
else
  skipped+=(anthropic)
fi
if [[ -n "${OLLAMA_URL:-}" ]]; then ping ollama "${SMOKE_OLLAMA_MODEL:-llama3.2}"; else skipped+=(ollama); fi

for provider in "${skipped[@]}"; do
  case $provider in
    openai) echo "SKIPPED openai: OPENAI_API_KEY is not set" ;;
    anthropic) echo "SKIPPED anthropic: ANTHROPIC_API_KEY is not set" ;;
    ollama) echo "SKIPPED ollama: OLLAMA_URL is not set" ;;
  esac
done
echo "smoke: $ran answered, $failed failed, ${#skipped[@]} skipped"
if ((ran == 0 && failed == 0)); then
  echo "smoke: NOTHING WAS TESTED against a real provider (set a key above to run it)"
  echo "smoke pipeline: SKIPPED, no provider key or URL is set"
  exit 0
fi
((failed == 0))

# The whole pipeline on the end-to-end test's description, with the first provider that answered.
if [[ -n "${OPENAI_API_KEY:-}" ]]; then
  scripts/smoke_pipeline.py "$work" openai "${SMOKE_OPENAI_MODEL:-gpt-4o-mini}"
elif [[ -n "${ANTHROPIC_API_KEY:-}" ]]; then
  scripts/smoke_pipeline.py "$work" anthropic "${SMOKE_ANTHROPIC_MODEL:-claude-3-5-haiku-latest}"
else
  scripts/smoke_pipeline.py "$work" ollama "${SMOKE_OLLAMA_MODEL:-llama3.2}"
fi

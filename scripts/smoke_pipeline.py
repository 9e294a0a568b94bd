#!/usr/bin/env python3
"""make smoke, second half: the whole agent pipeline against a real model, outside CI.

Starts `samokoder serve` on the smoke config (scripts/smoke.sh writes it) with one real provider as
every role's model, signs a user up, runs the end-to-end test's description through the default
pipeline, answers the agents' questions the way a patient user would, and reports what came out: the
run's state and summary, its steps and questions, the files of the workspace, whether the preview
serves a page, and the tokens and cost from GET /api/v1/usage. The report is also written to
<work>/pipeline-report.json; docs/pipeline.md ("Against a real model") records the last one.

    smoke_pipeline.py WORK_DIR PROVIDER MODEL
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

DESCRIPTION = "a to-do list with add, list and delete over a JSON API and a page"
PASSWORD = "smoke-run-violet-anchor-47"
RUN_MINUTES = int(os.environ.get("SMOKE_RUN_MINUTES", "30"))


def request(port, method, path, token=None, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            text = answer.read().decode()
            return answer.status, (json.loads(text) if text.startswith(("{", "[")) else text)
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        return error.code, text


def answer_for(question_id):
    """What a patient user answers each agent's question with."""
    if ".clarify." in question_id:
        return "Use your best judgement and keep it simple: in memory, one page, no accounts."
    if ".install." in question_id:
        return "skip"
    if ".run." in question_id:
        return "run"
    if ".review." in question_id:
        return "works"
    return "continue"


def main():
    work, provider, model = sys.argv[1], sys.argv[2], sys.argv[3]
    config_path = os.path.join(work, "config.json")
    config = json.load(open(config_path))
    config.setdefault("llm", {})["roles"] = {"default": [f"{provider}/{model}"]}
    pipeline_config = os.path.join(work, "pipeline-config.json")
    json.dump(config, open(pipeline_config, "w"), indent=2)

    log = open(os.path.join(work, "serve.log"), "w")
    server = subprocess.Popen(
        [os.path.join(os.environ.get("BUILD_DIR", "build"), "bin", "samokoder"), "serve", "--config",
         pipeline_config, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    port = None
    for line in server.stdout:
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match:
            port = int(match.group(1))
            break
    if port is None:
        print("smoke pipeline: the server did not start; see", log.name)
        return 1
    report = {"provider": provider, "model": model, "description": DESCRIPTION, "questions": []}
    started = time.time()
    try:
        status, _ = request(port, "POST", "/api/v1/auth/register", body={"email": "smoke@example.com", "password": PASSWORD})
        status, login = request(port, "POST", "/api/v1/auth/login", body={"email": "smoke@example.com", "password": PASSWORD})
        token = login["access_token"]
        _, project = request(port, "POST", "/api/v1/projects", token, {"name": "smoke to-do"})
        _, run = request(port, "POST", f"/api/v1/projects/{project['id']}/runs", token, {"description": DESCRIPTION})
        answered = set()
        document = {}
        while time.time() - started < RUN_MINUTES * 60:
            _, document = request(port, "GET", f"/api/v1/runs/{run['id']}", token)
            state = document.get("state")
            if state in ("succeeded", "failed", "cancelled"):
                break
            question = document.get("question")
            if state == "input_required" and question and question["id"] not in answered:
                answer = answer_for(question["id"])
                print(f"smoke pipeline: {question['text'][:200]!r} -> {answer!r}")
                report["questions"].append({"id": question["id"], "text": question["text"], "answer": answer})
                request(port, "POST", f"/api/v1/runs/{run['id']}/answers", token,
                        {"question_id": question["id"], "answer": answer})
                answered.add(question["id"])
            time.sleep(2)
        report["state"] = document.get("state")
        report["error"] = document.get("error")
        report["minutes"] = round((time.time() - started) / 60, 1)
        _, steps = request(port, "GET", f"/api/v1/runs/{run['id']}/steps?limit=500", token)
        items = steps.get("items", []) if isinstance(steps, dict) else []
        report["steps"] = len(items)
        report["summary"] = items[-1].get("summary") if items else None
        _, files = request(port, "GET", f"/api/v1/projects/{project['id']}/files", token)
        report["files"] = sorted(f.get("path") for f in files.get("items", [])) if isinstance(files, dict) else []
        _, usage = request(port, "GET", "/api/v1/usage", token)
        report["usage"] = usage.get("totals") if isinstance(usage, dict) else usage
        status, preview = request(port, "GET", f"/api/v1/projects/{project['id']}/preview", token)
        report["preview"] = preview.get("state") if isinstance(preview, dict) else status
    finally:
        server.terminate()
        server.wait(timeout=30)
    json.dump(report, open(os.path.join(work, "pipeline-report.json"), "w"), indent=2)
    print(json.dumps(report, indent=2))
    return 0 if report.get("state") == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())

"""The smoke check agent.troubleshooter runs against the generated app, as `python3 -c <this file>`.

It reads SAMOKODER_CHECK (JSON: run_command, checks, start_timeout_s, request_timeout_s, budget_s),
starts the app with `sh -c <run_command>` and PORT and HOST set to a free loopback port, in a session
(and process group) of its own, waits for the port to accept connections, runs each HTTP check in
order, stops the app's whole process group (SIGTERM, then SIGKILL), and prints exactly one JSON line:

  {"started": bool, "error": str|null, "results": [{"method", "path", "status", "ok", "error"}],
   "log": "<the last 2 KiB of the app's output>"}

The standard library only, and no file written: the check runs in the project's sandbox, where the
workspace is the only writable place. The app gets a session of its own so that stopping it reaches
everything it started; in exchange this script must never leave it behind, so it stops the app on every
way out (its own deadline, an exception, SIGTERM/SIGINT/SIGHUP from whoever runs it) and keeps within
budget_s, which the agent sets below the command's timeout.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

LOG_BYTES = 2048
BODY_BYTES = 64 * 1024
HOST = "127.0.0.1"
TERM_GRACE_S = 3.0
KILL_GRACE_S = 2.0


class OutputTail:
    """The last bytes of the app's stdout and stderr, read on a thread so the app never blocks on a
    full pipe."""

    def __init__(self, stream):
        self._data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        fd = stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._data += chunk
                if len(self._data) > 4 * LOG_BYTES:
                    del self._data[:-LOG_BYTES]

    def text(self, wait_s=0.0):
        # Whatever the app printed last reaches the pipe before its group is gone; give the reader a
        # moment to drain it (it may never end if something escaped the group and holds the pipe).
        self._thread.join(wait_s)
        with self._lock:
            return bytes(self._data[-LOG_BYTES:]).decode("utf-8", "replace")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def accepts(port):
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_until_listening(app, port, start_timeout_s):
    """None once the app accepts connections on the port, else why it did not."""
    deadline = time.monotonic() + start_timeout_s
    while time.monotonic() < deadline:
        if accepts(port):
            return None
        if app.poll() is not None:
            # A run command that backgrounds the server exits at once; the port says whether it runs.
            time.sleep(0.2)
            if accepts(port):
                return None
            return "the app exited with status %d before it listened on $PORT (%d)" % (app.returncode, port)
        time.sleep(0.1)
    return "the app did not listen on $PORT (%d) within %g s" % (port, start_timeout_s)


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """A check expects the status the app answers, a redirect included."""

    def redirect_request(self, *args, **kwargs):
        return None


def run_check(opener, port, check, timeout_s):
    method = check.get("method", "GET")
    path = check.get("path", "/")
    result = {"method": method, "path": path, "status": None, "ok": False, "error": None}
    body = check.get("body")
    data = body.encode("utf-8") if body is not None else None
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/html, */*"}
    if data is None:
        del headers["Content-Type"]
    request = urllib.request.Request("http://%s:%d%s" % (HOST, port, path), data=data, method=method,
                                     headers=headers)
    try:
        try:
            with opener.open(request, timeout=timeout_s) as response:
                status, content = response.status, response.read(BODY_BYTES)
        except urllib.error.HTTPError as answered:  # 4xx and 5xx (and 3xx) are answers too
            status = answered.code
            try:
                content = answered.read(BODY_BYTES)
            except Exception:
                content = b""
            finally:
                answered.close()
    except Exception as failure:
        reason = getattr(failure, "reason", None) or failure
        result["error"] = "no answer: %s" % (reason,)
        return result
    result["status"] = status
    text = content.decode("utf-8", "replace")
    expected_status = check.get("expect_status")
    expected_text = check.get("expect_contains")
    if status != expected_status:
        result["error"] = "got status %d, expected %s" % (status, expected_status)
    elif expected_text and expected_text not in text:
        result["error"] = "the response does not contain %s" % json.dumps(expected_text)
    else:
        result["ok"] = True
        return result
    snippet = " ".join(text.split())[:300]
    result["error"] += "; the response began: %s" % (snippet or "(empty)")
    return result


def group_running(pgid):
    """Whether a process of the group still runs. A killed app whose shell died first is reparented to
    the machine's init, which may take a while to reap it; a zombie runs nothing, so /proc is asked
    when it can be."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat_file:
                stat = stat_file.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def stop(app):
    """Ends the app's whole process group: SIGTERM, then SIGKILL for whatever is left."""
    for sig, grace_s in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, KILL_GRACE_S)):
        try:
            os.killpg(app.pid, sig)
        except ProcessLookupError:
            app.poll()
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            app.poll()  # reaps the group's leader, our child
            if not group_running(app.pid):
                return
            time.sleep(0.05)


def stop_on_signal(signum, frame):
    # SystemExit unwinds through main's finally, which stops the app.
    sys.exit(128 + signum)


def main():
    spec = json.loads(os.environ["SAMOKODER_CHECK"])
    began = time.monotonic()
    budget_s = float(spec.get("budget_s", 120))
    start_timeout_s = float(spec.get("start_timeout_s", 60))
    request_timeout_s = float(spec.get("request_timeout_s", 20))
    checks = spec.get("checks", [])
    report = {"started": False, "error": None, "results": [], "log": ""}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop_on_signal)

    port = free_port()
    env = {name: value for name, value in os.environ.items() if name != "SAMOKODER_CHECK"}
    env["PORT"] = str(port)
    env["HOST"] = HOST
    app = None
    tail = None
    try:
        try:
            app = subprocess.Popen(["/bin/sh", "-c", spec["run_command"]], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
        except OSError as failure:
            report["error"] = "the app could not be started: %s" % failure
            return report
        tail = OutputTail(app.stdout)
        problem = wait_until_listening(app, port, start_timeout_s)
        if problem:
            report["error"] = problem
            return report
        report["started"] = True
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirects)
        for check in checks:
            remaining_s = budget_s - (time.monotonic() - began) - TERM_GRACE_S - KILL_GRACE_S
            if remaining_s < 1:
                report["results"].append({"method": check.get("method"), "path": check.get("path"),
                                          "status": None, "ok": False,
                                          "error": "not run: the smoke check ran out of time"})
                continue
            report["results"].append(run_check(opener, port, check, min(request_timeout_s, remaining_s)))
        return report
    finally:
        # A second signal must not cut the stopping short and leave the app running.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if app is not None:
            stop(app)
            report["log"] = tail.text(wait_s=0.5) if tail else ""
        # The one line the agent reads; json.dumps escapes everything outside ASCII.
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Samokoder benchmark harness: `make bench` (full) and `make bench-smoke` / `ctest -L bench` (smoke).

One run measures, side by side, each figure the median of --runs runs with min and max:
  http       GET /healthz against nginx serving the same JSON as a static file; authenticated
             GET /api/v1/projects (20 projects), GET /api/v1/projects/{id}/files/{path} (4 KiB) and
             POST /api/v1/projects against bench/reference (FastAPI + uvicorn + SQLite + PyJWT); wrk
             at each of --connections, throughput and p50/p99 latency (bench/wrk/bench.lua)
  plugin     a call through a plugin lease against a direct virtual call (plugin_call_bench)
  startup    spawn to the first 200 from /readyz (new and existing database), idle RSS
  memory     RSS of every server idle, at its peak under load, and after the load
  reload     PluginManager::reload swap latency and drain time while wrk hammers a route through
             the reloaded plugin (reload_bench), and whether any request failed
  llm        a streamed completion through the LLM gateway against the same completion made directly
             (wall and CPU time per call), and /healthz latency while hundreds of completions are in
             flight against a model server that takes a second to answer (llm_bench)
  runs       the runs engine (runs_bench): 200 runs of ten model calls each started at once against the
             same chains of direct calls (wall and CPU per call), /healthz meanwhile, memory per paused
             run, and one run's events fanned out over SSE to 1,000 clients
  previews   a preview's cold start (POST to the first 200 through the preview proxy) for a static
             site, a Node app and a Python app under the sandbox and process runners; wrk against the
             Node app directly and through the proxy (preview.process, and preview.sandbox's socket
             bridge): throughput, p50/p99 and the ratio proxied / direct
  pipeline   whole runs of the default pipeline's eleven agents in one kernel process (pipeline_bench),
             the scripted model answering at once for a generated app of T tasks x F files (--pipeline-grid):
             per run the wall time, steps, model calls and commands, the kernel's time (wall minus the
             commands, the model calls and the client's answers) and its CPU time, per step, and how both
             grow with T and F (ratios to the first case); agents' commands unconfined and under the
             sandbox (--pipeline-containment), previews off
and writes <out-dir>/latest.json and latest.md (machine, versions, figures, ratios, targets, and a
perf profile of each server whose figure misses its target).

Smoke mode runs everything once with tiny durations, skips peers that are not installed (nginx, the
reference's Python packages) and the plugin-call benchmark when it was not built, and fails only when
the harness breaks: a tool is missing, a server does not start, a seeding or check request fails, a
load run gets error answers. Numbers never fail it.

`--only llm`, `--only runs`, `--only previews` or `--only pipeline` measures that section alone (no peers) into
--out-dir, as bench/results/llm/, bench/results/runs/, bench/results/previews/ and bench/results/pipeline/ were
made. The previews section skips the sandbox's previews (with the reason) where bubblewrap cannot run, and the
Node app where node is missing; the pipeline section reports the sandbox as not measured where its warm-up run
fails, and smoke mode runs it with 1x1 and 2x2 apps, unconfined only.

Only the standard library; run it with /usr/bin/python3 (the reference needs Debian's packages).
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import queue
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
WRK_SCRIPT = BENCH_DIR / "wrk" / "bench.lua"
REFERENCE_DIR = BENCH_DIR / "reference"
SYSTEM_PYTHON = "/usr/bin/python3"
PROJECT_COUNT = 20
FILE_PATH = "src/app.js"
CREATE_BODY = json.dumps({"name": "bench project", "description": "created by wrk"})

# The issue's targets; reported, never asserted.
TARGET_HEALTHZ_VS_NGINX = 1.0
TARGET_ROUTE_VS_REFERENCE = 20.0
TARGET_PLUGIN_OVERHEAD_NS = 20.0
TARGET_READY_MS = 200.0
TARGET_IDLE_RSS_MIB = 30.0
TARGET_LLM_OVERHEAD_US = 1000.0
TARGET_LLM_EXTRA_CPU_PCT = 5.0
TARGET_LLM_HEALTHZ_P99_MS = 10.0
TARGET_RUNS_OVERHEAD_US = 1000.0
TARGET_RUNS_HEALTHZ_P99_MS = 10.0
# Streamed answers of llm_bench's overhead section: a realistic 200 deltas of a few tokens each (the
# per-chunk path), and a single delta (the per-call path alone).
LLM_DELTAS = (200, 1)

SCENARIOS = {
    "healthz": {"title": "GET /healthz", "peer": "nginx"},
    "projects_list": {"title": "GET /api/v1/projects (20 projects)", "peer": "reference"},
    "file_get": {"title": "GET /api/v1/projects/{id}/files/src/app.js (4 KiB)", "peer": "reference"},
    "project_create": {"title": "POST /api/v1/projects", "peer": "reference"},
}


class HarnessError(Exception):
    """The harness itself broke (as opposed to a figure being slow)."""


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ----------------------------------------------------------------------------------------------------
# Processes


class Service:
    """A process this harness started, in its own process group, its output copied to a log file."""

    def __init__(self, name, argv, log_path, env=None, cwd=None, stdin=False):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "w", buffering=1)
        self._lines = queue.Queue()
        self.started_at = time.perf_counter()
        try:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, env=env, cwd=cwd,
                start_new_session=True, text=True, bufsize=1)
        except OSError as e:
            self._log.close()
            raise HarnessError(f"cannot start {name} ({argv[0]}): {e}") from e
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self):
        for line in self.proc.stdout:
            self._log.write(line)
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    @property
    def pid(self):
        return self.proc.pid

    def wait_for_line(self, pattern, timeout):
        """The first output line matching `pattern` (a regex); HarnessError on exit or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HarnessError(f"{self.name} printed no line matching {pattern!r} within {timeout} s "
                                   f"(log: {self.log_path})")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise HarnessError(f"{self.name} exited with {self.proc.wait()} before it was ready "
                                   f"(log: {self.log_path}):\n{tail(self.log_path)}")
            match = re.search(pattern, line)
            if match:
                return match

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self, timeout=15):
        """SIGTERM to the process group this harness created, SIGKILL after `timeout`; the exit code."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(timeout=5)
        self._log.close()
        return self.proc.returncode


def tail(path, lines=15):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid):
    """pid and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError):
            continue
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid):
    return sum(rss_kib(p) for p in process_tree(pid))


class RssSampler:
    """Peak RSS of a process tree while a load runs (sampled every 100 ms)."""

    def __init__(self, pid):
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.pid))
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# ----------------------------------------------------------------------------------------------------
# HTTP


def request(base, method, path, token=None, body=None, timeout=30):
    """(status, headers, body bytes) of one request to base ("host:port")."""
    host, port = base.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        else:
            headers["Content-Type"] = "application/octet-stream"
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def expect(base, method, path, status, token=None, body=None, what=""):
    got, _, content = request(base, method, path, token, body)
    if got != status:
        raise HarnessError(f"{what or method + ' ' + path} on {base}: expected {status}, got {got}: "
                           f"{content[:300].decode(errors='replace')}")
    return content


def wait_until(base, path, status, timeout, interval=0.001, service=None):
    """Seconds until GET path answers `status`; HarnessError after `timeout` or when `service` exits."""
    start = time.perf_counter()
    while True:
        try:
            if request(base, "GET", path, timeout=5)[0] == status:
                return time.perf_counter() - start
        except OSError:
            pass
        if service is not None and service.proc.poll() is not None:
            raise HarnessError(f"{service.name} exited with {service.proc.returncode} before it was ready "
                               f"(log: {service.log_path}):\n{tail(service.log_path)}")
        if time.perf_counter() - start > timeout:
            raise HarnessError(f"GET {path} on {base} did not answer {status} within {timeout} s")
        time.sleep(interval)


# ----------------------------------------------------------------------------------------------------
# wrk


def run_wrk(url, connections, duration, threads, method="GET", token=None, body=None, headers=None):
    argv = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
            "-s", str(WRK_SCRIPT), url]
    env = dict(os.environ, BENCH_METHOD=method, BENCH_TOKEN=token or "", BENCH_BODY=body or "",
               BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in (headers or {}).items()))
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60)
    except FileNotFoundError as e:
        raise HarnessError("wrk is not installed (scripts/install-deps.sh test)") from e
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result = json.loads(line[len("BENCH_JSON "):])
            seconds = result["duration_us"] / 1e6
            result["rps"] = result["requests"] / seconds if seconds > 0 else 0.0
            result["bytes_per_response"] = result["bytes"] / result["requests"] if result["requests"] else 0
            return result
    raise HarnessError(f"wrk {' '.join(argv)} printed no result (exit {done.returncode}):\n"
                       f"{done.stdout}\n{done.stderr}")


# ----------------------------------------------------------------------------------------------------
# Statistics


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


# ----------------------------------------------------------------------------------------------------
# Targets under test


def file_content():
    """4096 bytes of plausible JavaScript, the same for every server."""
    lines, i = [], 0
    while sum(len(l) + 1 for l in lines) < 4096:
        lines.append(f"export function handler{i}(request) {{ return {{ status: 200, body: 'item {i}' }}; }}")
        i += 1
    return ("\n".join(lines) + "\n").encode()[:4096]


class Samokoder:
    """The server under test: `samokoder serve` on SQLite with the bench config."""

    name = "samokoder"

    def __init__(self, build_dir, work_dir, args):
        self.binary = build_dir / "bin" / "samokoder"
        self.plugin_dir = build_dir / "plugins"
        self.work_dir = work_dir
        self.args = args
        self.secret = secrets.token_urlsafe(48)
        self.service = None
        self.base = None

    def write_config(self, data_dir):
        data_dir.mkdir(parents=True, exist_ok=True)
        unlimited = {"capacity": 1_000_000_000, "refill_per_minute": 1_000_000_000}
        config = {
            "environment": "development",
            "server": {"listen": "127.0.0.1:0", "io_threads": self.args.io_threads,
                       "worker_threads": self.args.worker_threads},
            "log": {"level": "warn", "format": "text", "access_log": False},
            "plugin_dir": str(self.plugin_dir),
            "runtime_dir": str(data_dir / "run"),
            "workspace_root": str(data_dir / "workspaces"),
            "plugins": [
                {"id": "storage.sqlite", "file": "storage_sqlite.so", "required": True,
                 "config": {"path": str(data_dir / "samokoder.db")}},
                {"id": "auth.local", "file": "auth_local.so", "required": True},
                {"id": "auth.apitoken", "file": "auth_apitoken.so"},
            ],
            # Rate limits raised so the load generator measures the server, not its 429s; tokens live
            # long enough for the whole run.
            "security": {"access_token_ttl_seconds": 24 * 3600,
                         "rate_limits": {"auth": unlimited, "default": unlimited, "files": unlimited}},
        }
        path = data_dir / "bench-config.json"
        path.write_text(json.dumps(config, indent=2))
        return path

    def spawn(self, data_dir, log_path):
        if not self.binary.exists():
            raise HarnessError(f"{self.binary} is missing: build first (make bench)")
        env = dict(os.environ, SAMOKODER_SECRET_KEY=self.secret)
        env.pop("SAMOKODER_DATABASE_URL", None)
        return Service("samokoder", [str(self.binary), "serve", "--config", str(self.write_config(data_dir)),
                                     "--listen", "127.0.0.1:0"], log_path, env=env, cwd=data_dir)

    def start(self):
        self.service = self.spawn(self.work_dir / "samokoder", self.work_dir / "samokoder.log")
        match = self.service.wait_for_line(r"samokoder listening on http://(\S+)", 60)
        self.base = match.group(1)
        wait_until(self.base, "/readyz", 200, 30, service=self.service)
        self.pid = self.service.pid

    def seed(self, content):
        password = secrets.token_urlsafe(18)
        self.tokens = {}
        for role in ("reader", "writer"):
            email = f"bench-{role}@example.com"
            expect(self.base, "POST", "/api/v1/auth/register", 202, body={"email": email, "password": password},
                   what="register")
            answer = expect(self.base, "POST", "/api/v1/auth/login", 200, body={"email": email, "password": password},
                            what="login")
            self.tokens[role] = json.loads(answer)["access_token"]
        ids = []
        for index in range(PROJECT_COUNT):
            created = expect(self.base, "POST", "/api/v1/projects", 201, self.tokens["reader"],
                             {"name": f"project {index}", "description": "seeded for the benchmark"},
                             what="create project")
            ids.append(json.loads(created)["id"])
        self.project_id = ids[0]
        expect(self.base, "PUT", f"/api/v1/projects/{self.project_id}/files/{FILE_PATH}", 200,
               self.tokens["reader"], content, what="upload the 4 KiB file")

    def stop(self):
        if self.service:
            self.service.stop()


def nginx_temp_paths(prefix):
    """The temp-path directives that keep nginx inside its own folder (it is started as root)."""
    return "\n".join(f"  {kind}_temp_path {prefix}/temp/{name};" for kind, name in (
        ("client_body", "body"), ("proxy", "proxy"), ("fastcgi", "fastcgi"), ("uwsgi", "uwsgi"), ("scgi", "scgi")))


class NginxReverseProxy:
    """nginx-light as a reverse proxy in front of one app (keep-alive to the app, a worker per core): what
    a proxy hop costs on this machine, the reference the preview proxy's ratio is read against."""

    def __init__(self, work_dir, app_port):
        self.prefix = work_dir / "nginx-proxy"
        self.app_port = app_port
        self.service = None
        self.port = None

    def start(self):
        self.prefix.mkdir(parents=True)
        (self.prefix / "temp").mkdir()
        self.port = free_port()
        conf = self.prefix / "nginx.conf"
        conf.write_text(f"""
worker_processes auto;
pid {self.prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000000;
{nginx_temp_paths(self.prefix)}
  upstream app {{ server 127.0.0.1:{self.app_port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }}
  }}
}}
""")
        self.service = Service("nginx-proxy", ["nginx", "-p", str(self.prefix), "-c", str(conf), "-g", "daemon off;"],
                               self.prefix / "nginx.log")
        wait_until(f"127.0.0.1:{self.port}", "/", 200, 30, interval=0.01, service=self.service)

    def stop(self):
        if self.service:
            self.service.stop()


class Nginx:
    """nginx-light serving {"status":"ok"} as a static file at /healthz: the practical HTTP limit."""

    name = "nginx"

    def __init__(self, work_dir):
        self.prefix = work_dir / "nginx"
        self.service = None

    @staticmethod
    def available():
        return shutil.which("nginx") is not None

    def start(self):
        self.prefix.mkdir(parents=True)
        for sub in ("html", "temp", "logs"):
            (self.prefix / sub).mkdir()
        (self.prefix / "html" / "healthz.json").write_text('{"status":"ok"}')
        port = free_port()
        conf = self.prefix / "nginx.conf"
        # Worker per core, no access log, open-file cache and unlimited keep-alive requests: nginx at
        # its best, so the ratio is against the real limit of this machine.
        conf.write_text(f"""
worker_processes auto;
pid {self.prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  open_file_cache max=16 inactive=60s;
  open_file_cache_valid 60s;
{nginx_temp_paths(self.prefix)}
  server {{
    listen 127.0.0.1:{port};
    location = /healthz {{
      default_type application/json;
      alias {self.prefix}/html/healthz.json;
    }}
  }}
}}
""")
        # Workers run as nobody when started as root: they must be able to reach the file.
        for path in (self.prefix.parent, self.prefix, self.prefix / "html"):
            path.chmod(0o755)
        (self.prefix / "html" / "healthz.json").chmod(0o644)
        self.service = Service("nginx", ["nginx", "-p", str(self.prefix), "-c", str(conf), "-g", "daemon off;"],
                               self.prefix / "nginx.log")
        self.base = f"127.0.0.1:{port}"
        wait_until(self.base, "/healthz", 200, 30, interval=0.01, service=self.service)
        self.pid = self.service.pid

    def stop(self):
        if self.service:
            self.service.stop()


class Reference:
    """bench/reference/app.py on uvicorn, one worker per core."""

    name = "reference"
    MODULES = ("fastapi", "uvicorn", "jwt")

    # uvicorn's event loop and HTTP parser: "debian" is what the three Debian packages give (asyncio and
    # h11; python3-uvicorn does not pull in uvloop or httptools), "fast" is uvicorn at its fastest.
    STACKS = {"debian": ["--loop", "asyncio", "--http", "h11"], "fast": ["--loop", "uvloop", "--http", "httptools"]}
    # serve.py is `uvicorn app:app --workers N` without uvicorn's lost-TCP_NODELAY bug (see there).

    def __init__(self, work_dir, workers, stack):
        self.dir = work_dir / "reference"
        self.workers = workers
        self.stack = stack
        self.secret = secrets.token_urlsafe(48)
        self.service = None

    @classmethod
    def missing(cls, stack):
        """What is missing to run the reference, or None."""
        if not Path(SYSTEM_PYTHON).exists():
            return f"{SYSTEM_PYTHON} is not installed"
        modules = cls.MODULES + (("uvloop", "httptools") if stack == "fast" else ())
        check = subprocess.run([SYSTEM_PYTHON, "-c", "import " + ", ".join(modules)], capture_output=True, text=True)
        if check.returncode != 0:
            packages = " ".join("python3-" + m for m in modules)
            return (f"Debian packages {packages} are not all installed (scripts/install-deps.sh bench): "
                    + check.stderr.strip().splitlines()[-1])
        return None

    def seed(self, content):
        self.dir.mkdir(parents=True)
        content_file = self.dir / "content.bin"
        content_file.write_bytes(content)
        self.tokens = {}
        for role in ("reader", "writer"):
            # Separate databases would change what is measured: one database, two seeded users.
            done = subprocess.run([SYSTEM_PYTHON, str(REFERENCE_DIR / "app.py"), "seed", str(self.dir / "reference.db"),
                                   self.secret, FILE_PATH, str(content_file),
                                   str(PROJECT_COUNT if role == "reader" else 0), f"bench-{role}@example.com"],
                                  capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                raise HarnessError(f"seeding the reference failed:\n{done.stdout}\n{done.stderr}")
            seeded = json.loads(done.stdout)
            self.tokens[role] = seeded["token"]
            if role == "reader":
                self.project_id = seeded["project_id"]

    def start(self):
        port = free_port()
        (self.dir / "workspaces").mkdir(mode=0o700)
        env = dict(os.environ, BENCH_REFERENCE_DB=str(self.dir / "reference.db"), BENCH_REFERENCE_SECRET=self.secret,
                   BENCH_REFERENCE_WORKSPACES=str(self.dir / "workspaces"))
        self.service = Service("reference", [SYSTEM_PYTHON, str(REFERENCE_DIR / "serve.py"), "--host", "127.0.0.1",
                                             "--port", str(port), "--workers", str(self.workers),
                                             *self.STACKS[self.stack]],
                               self.dir / "uvicorn.log", env=env, cwd=self.dir)
        self.base = f"127.0.0.1:{port}"
        wait_until(self.base, "/healthz", 200, 60, interval=0.05, service=self.service)
        self.pid = self.service.pid

    def stop(self):
        if self.service:
            self.service.stop()


# ----------------------------------------------------------------------------------------------------
# Sections


def check_routes(server, content):
    """Every measured route answers as the benchmark expects, before anything is measured."""
    listed = json.loads(expect(server.base, "GET", "/api/v1/projects", 200, server.tokens["reader"]))
    if len(listed["items"]) != PROJECT_COUNT:
        raise HarnessError(f"{server.name}: GET /api/v1/projects lists {len(listed['items'])} projects, "
                           f"expected {PROJECT_COUNT}")
    got = expect(server.base, "GET", f"/api/v1/projects/{server.project_id}/files/{FILE_PATH}", 200,
                 server.tokens["reader"])
    if got != content:
        raise HarnessError(f"{server.name}: the file route answered {len(got)} bytes that differ from the upload")
    expect(server.base, "POST", "/api/v1/projects", 201, server.tokens["writer"], json.loads(CREATE_BODY))


def scenario_request(scenario, server):
    """(path, method, token, body) of one scenario on one server."""
    if scenario == "healthz":
        return "/healthz", "GET", None, None
    if scenario == "projects_list":
        return "/api/v1/projects", "GET", server.tokens["reader"], None
    if scenario == "file_get":
        return f"/api/v1/projects/{server.project_id}/files/{FILE_PATH}", "GET", server.tokens["reader"], None
    return "/api/v1/projects", "POST", server.tokens["writer"], CREATE_BODY


def measure_http(args, targets, failures):
    """wrk over every (scenario, server, connections), --runs times, alternating the order of servers."""
    plan = []
    for scenario, spec in SCENARIOS.items():
        peer = targets.get(spec["peer"])
        servers = [targets["samokoder"]] + ([peer] if peer else [])
        plan.append((scenario, servers))
    raw = {}  # (scenario, server, connections) -> [wrk results]
    peaks = {}  # server -> [peak RSS KiB per run]
    if args.warmup > 0:
        for scenario, servers in plan:
            for server in servers:
                path, method, token, body = scenario_request(scenario, server)
                run_wrk(f"http://{server.base}{path}", 16, args.warmup, args.wrk_threads, method, token, body)
    for run in range(args.runs):
        run_peaks = {}
        for scenario, servers in plan:
            for connections in args.connections:
                ordered = servers if run % 2 == 0 else list(reversed(servers))
                for server in ordered:
                    path, method, token, body = scenario_request(scenario, server)
                    with RssSampler(server.pid) as sampler:
                        result = run_wrk(f"http://{server.base}{path}", connections, args.duration, args.wrk_threads,
                                         method, token, body)
                    run_peaks[server.name] = max(run_peaks.get(server.name, 0), sampler.peak_kib)
                    raw.setdefault((scenario, server.name, connections), []).append(result)
                    errors = result["errors"]
                    log(f"run {run + 1}/{args.runs} {scenario:14} {server.name:9} c={connections:<3} "
                        f"{result['rps']:10.0f} req/s  p50 {result['latency_us']['p50'] / 1000:7.2f} ms  "
                        f"p99 {result['latency_us']['p99'] / 1000:7.2f} ms"
                        + (f"  ERRORS {errors}" if any(errors.values()) else ""))
                    if errors["status"] or errors["connect"]:
                        failures.append(f"{scenario} on {server.name} with {connections} connections: "
                                        f"{errors['status']} error answers, {errors['connect']} connect errors")
        for name, peak in run_peaks.items():
            peaks.setdefault(name, []).append(peak)
    rows = []
    for (scenario, name, connections), results in raw.items():
        rows.append({
            "scenario": scenario, "server": name, "connections": connections,
            "rps": summary([r["rps"] for r in results]),
            "p50_ms": summary([r["latency_us"]["p50"] / 1000 for r in results]),
            "p99_ms": summary([r["latency_us"]["p99"] / 1000 for r in results]),
            "bytes_per_response": round(statistics.median(r["bytes_per_response"] for r in results)),
            "errors": {k: sum(r["errors"][k] for r in results) for k in results[0]["errors"]},
            "requests": sum(r["requests"] for r in results),
        })
    ratios = []
    for scenario, servers in plan:
        if len(servers) < 2:
            continue
        for connections in args.connections:
            ours = raw[(scenario, "samokoder", connections)]
            theirs = raw[(scenario, servers[1].name, connections)]
            # Paired by run: both servers were measured back to back within the same run.
            ratios.append({
                "scenario": scenario, "peer": servers[1].name, "connections": connections,
                "throughput": summary([a["rps"] / b["rps"] if b["rps"] else None for a, b in zip(ours, theirs)]),
                "p50_latency": summary([b["latency_us"]["p50"] / a["latency_us"]["p50"] if a["latency_us"]["p50"] else None
                                        for a, b in zip(ours, theirs)]),
            })
    return rows, ratios, peaks


def measure_startup(args, samokoder):
    """Spawn to the first 200 from /readyz; `existing` reuses one data directory after its first start."""
    results = {"new_database": [], "existing_database": []}
    idle = []
    listen = []
    persistent = samokoder.work_dir / "startup-existing"
    for index in range(args.starts):
        for kind in ("new_database", "existing_database"):
            data_dir = samokoder.work_dir / f"startup-{index}" if kind == "new_database" else persistent
            if kind == "existing_database" and index == 0:
                # The first start creates the database; it is not an "existing database" start.
                first = samokoder.spawn(data_dir, samokoder.work_dir / "startup-existing-first.log")
                base = first.wait_for_line(r"samokoder listening on http://(\S+)", 60).group(1)
                wait_until(base, "/readyz", 200, 30)
                first.stop()
            service = samokoder.spawn(data_dir, samokoder.work_dir / f"startup-{kind}-{index}.log")
            start = service.started_at  # taken right before the fork, after the config was written
            try:
                base = service.wait_for_line(r"samokoder listening on http://(\S+)", 60).group(1)
                listening = time.perf_counter() - start
                wait_until(base, "/readyz", 200, 30, interval=0.0005)
                ready = time.perf_counter() - start
                results[kind].append(ready * 1000)
                if kind == "new_database":
                    listen.append(listening * 1000)
                    time.sleep(0.5)  # let start-up allocations settle before reading the idle RSS
                    idle.append(rss_kib(service.pid) / 1024)
            finally:
                service.stop()
    return {"ready_ms_new_database": summary(results["new_database"]),
            "ready_ms_existing_database": summary(results["existing_database"]),
            "listening_ms_new_database": summary(listen),
            "idle_rss_mib": summary(idle)}


def measure_plugin_call(args, build_dir):
    binary = build_dir / "bin" / "plugin_call_bench"
    if not binary.exists():
        return None
    argv = [str(binary), "--benchmark_format=json", f"--benchmark_repetitions={args.runs}",
            f"--benchmark_min_time={args.plugin_min_time}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise HarnessError(f"plugin_call_bench failed ({done.returncode}):\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    runs = {}
    for entry in report["benchmarks"]:
        if entry.get("run_type") == "iteration":
            if entry.get("error_occurred"):
                raise HarnessError(f"plugin_call_bench: {entry['name']}: {entry.get('error_message')}")
            scale = {"ns": 1, "us": 1e3, "ms": 1e6}[entry.get("time_unit", "ns")]
            runs.setdefault(entry["run_name"], []).append(entry["cpu_time"] * scale)
    benchmarks = {name: summary(values) for name, values in runs.items()}
    direct = runs.get("BM_DirectVirtualCall/threads:1", [])
    through = runs.get("BM_PluginCallThroughSlot/threads:1", [])
    return {"benchmarks": benchmarks,
            "overhead_ns": summary([b - a for a, b in zip(direct, through)]),
            "context": report.get("context", {})}


def measure_reload(args, build_dir, failures):
    binary = build_dir / "bin" / "reload_bench"
    if not binary.exists():
        raise HarnessError(f"{binary} is missing: build first (make bench)")
    runs = []
    for run in range(args.runs):
        service = Service("reload_bench", [str(binary), "--reloads", str(args.reloads), "--interval-ms", "20",
                                           "--io-threads", str(args.io_threads),
                                           "--worker-threads", str(args.worker_threads)],
                          args.work_dir / f"reload-{run}.log", stdin=True)
        try:
            port = json.loads(service.wait_for_line(r'^\{.*"event":"listening".*\}$', 60).group(0))["port"]
            results = {}
            load = threading.Thread(target=lambda: results.update(
                run_wrk(f"http://127.0.0.1:{port}/echo", args.reload_connections, args.reload_duration,
                        args.wrk_threads)))
            load.start()
            time.sleep(1.0)  # the load is running before the first reload
            started = time.perf_counter()
            service.send("start")
            outcome = json.loads(service.wait_for_line(r'^\{.*"event":"result".*\}$', 300).group(0))
            reload_seconds = time.perf_counter() - started
            load.join()
            service.send("stop")
            try:
                service.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass  # stop() below ends it and reports the signal as a failure
        finally:
            code = service.stop()
        if code != 0:
            raise HarnessError(f"reload_bench exited with {code}:\n{tail(service.log_path)}")
        if reload_seconds + 1.0 > args.reload_duration:
            failures.append(f"reload run {run + 1}: the reloads ({reload_seconds:.1f} s) outlasted the load")
        errors = results["errors"]
        failed = errors["status"] + errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
        if failed:
            failures.append(f"reload run {run + 1}: {failed} requests failed during reloads ({errors})")
        swap, drain = sorted(outcome["swap_latency_us"]), sorted(outcome["drain_time_us"])
        runs.append({"reloads": len(swap), "swap_p50_us": percentile(swap, 50), "swap_p99_us": percentile(swap, 99),
                     "swap_max_us": swap[-1], "drain_p50_us": percentile(drain, 50), "drain_max_us": drain[-1],
                     "requests": results["requests"], "rps": results["rps"], "failed_requests": failed,
                     "rss_kib_before": outcome["rss_kib_before"], "rss_kib_after": outcome["rss_kib_after"],
                     "final_generation": outcome["generation"]})
        log(f"reload run {run + 1}/{args.runs}: {len(swap)} reloads, swap p50 {runs[-1]['swap_p50_us']:.0f} us, "
            f"drain p50 {runs[-1]['drain_p50_us']:.0f} us, {results['requests']} requests, {failed} failed")
    keys = ["swap_p50_us", "swap_p99_us", "swap_max_us", "drain_p50_us", "drain_max_us", "rps", "failed_requests"]
    figures = {key: summary([r[key] for r in runs]) for key in keys}
    figures["reloads_per_run"] = args.reloads
    figures["connections"] = args.reload_connections
    figures["runs"] = runs
    return figures


def measure_llm(args, build_dir, failures):
    """llm_bench --runs times: the gateway's overhead per streamed completion over a direct call, and
    /healthz while --llm-streams completions are in flight; None when llm_bench is not built."""
    binary = build_dir / "bin" / "llm_bench"
    if not binary.exists():
        return None
    runs = []
    for run in range(args.runs):
        argv = [str(binary), "--calls", str(args.llm_calls), "--warmup", str(args.llm_warmup),
                "--block", str(args.llm_block), "--deltas", ",".join(str(d) for d in LLM_DELTAS),
                "--streams", str(args.llm_streams), "--delay-ms", str(args.llm_delay_ms),
                "--stream-deltas", str(args.llm_stream_deltas), "--idle-ms", str(args.llm_idle_ms)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=1200)
        except subprocess.TimeoutExpired as e:
            raise HarnessError(f"llm_bench did not finish within {e.timeout} s") from e
        if done.returncode != 0:
            raise HarnessError(f"llm_bench exited with {done.returncode}:\n{done.stderr[-2000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(result)
        for case in result["overhead"]:
            log(f"llm run {run + 1}/{args.runs} overhead, {case['deltas']} deltas: wall p50 direct "
                f"{case['direct']['wall_p50_us']:.0f} us, gateway {case['gateway']['wall_p50_us']:.0f} us; CPU "
                f"{case['direct']['cpu_us_per_call']:.0f} / {case['gateway']['cpu_us_per_call']:.0f} us per call")
        c = result["concurrent"]
        log(f"llm run {run + 1}/{args.runs} {c['streams']} streams: {c['failed']} failed, {c['wall_ms']:.0f} ms "
            f"(one alone {c['one_call_alone_ms']:.0f} ms), /healthz p99 {c['healthz_load_ms']['p99']:.2f} ms "
            f"(idle {c['healthz_idle_ms']['p99']:.2f} ms), peak {c['peak_threads']} threads, "
            f"{c['peak_rss_kib'] / 1024:.0f} MiB")
        if c["failed"] or c["healthz_errors"]:
            failures.append(f"llm run {run + 1}: {c['failed']} of {c['streams']} streams failed "
                            f"({'; '.join(c['failures'])}), {c['healthz_errors']} /healthz errors")
    overhead = []
    for index, first in enumerate(runs[0]["overhead"]):
        cases = [r["overhead"][index] for r in runs]
        row = {"deltas": first["deltas"], "answer_bytes": first["answer_bytes"], "calls_per_run": first["calls"]}
        for variant in ("direct", "gateway"):
            for key in ("wall_p50_us", "wall_p99_us", "wall_mean_us", "cpu_us_per_call"):
                row[f"{variant}_{key}"] = summary([c[variant][key] for c in cases])
        # Per run: both were measured in the same process, in alternating blocks.
        row["extra_wall_p50_us"] = summary([c["gateway"]["wall_p50_us"] - c["direct"]["wall_p50_us"] for c in cases])
        row["extra_wall_p99_us"] = summary([c["gateway"]["wall_p99_us"] - c["direct"]["wall_p99_us"] for c in cases])
        row["extra_cpu_us"] = summary([c["gateway"]["cpu_us_per_call"] - c["direct"]["cpu_us_per_call"]
                                       for c in cases])
        row["extra_cpu_pct"] = summary([100.0 * (c["gateway"]["cpu_us_per_call"] / c["direct"]["cpu_us_per_call"] - 1)
                                        for c in cases if c["direct"]["cpu_us_per_call"] > 0])
        overhead.append(row)
    conc = [r["concurrent"] for r in runs]
    concurrent = {key: conc[0][key] for key in ("streams", "caller_threads", "delay_ms", "deltas")}
    for key in ("failed", "healthz_errors", "wall_ms", "one_call_alone_ms", "peak_threads", "threads_before"):
        concurrent[key] = summary([c[key] for c in conc])
    concurrent["peak_rss_mib"] = summary([c["peak_rss_kib"] / 1024 for c in conc])
    concurrent["rss_before_mib"] = summary([c["rss_kib_before"] / 1024 for c in conc])
    for group in ("call_ms", "healthz_idle_ms", "healthz_load_ms"):
        for stat in ("p50", "p99", "max"):
            concurrent[f"{group}_{stat}"] = summary([c[group][stat] for c in conc])
        concurrent[f"{group}_count"] = summary([c[group]["count"] for c in conc])
    return {"overhead": overhead, "concurrent": concurrent, "runs": runs}


def measure_runs(args, build_dir, failures):
    """runs_bench --runs times: concurrent runs against chains of direct calls, /healthz meanwhile, memory
    per paused run and SSE fan-out; None when runs_bench is not built."""
    binary = build_dir / "bin" / "runs_bench"
    if not binary.exists():
        return None
    runs = []
    for run in range(args.runs):
        argv = [str(binary), "--runs", str(args.run_count), "--calls", str(args.run_calls),
                "--delay-ms", str(args.run_delay_ms), "--deltas", str(args.run_deltas),
                "--idle-ms", str(args.run_idle_ms), "--paused", str(args.run_paused),
                "--subscribers", str(args.run_subscribers), "--fanout-calls", str(args.run_fanout_calls),
                "--fanout-deltas", str(args.run_deltas)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired as e:
            raise HarnessError(f"runs_bench did not finish within {e.timeout} s") from e
        if done.returncode != 0:
            raise HarnessError(f"runs_bench exited with {done.returncode}:\n{done.stderr[-2000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(result)
        c, p, f = result["concurrent"], result["paused"], result["fanout"]
        log(f"runs run {run + 1}/{args.runs}: {c['runs']} runs x {c['calls_per_run']} calls in "
            f"{c['runs_phase']['wall_ms']:.0f} ms (bound {c['bound_ms']:.0f}, direct "
            f"{c['direct']['wall_ms']:.0f}), overhead per call p50 {c['runs_phase']['overhead_per_call_us']['p50']:.0f} "
            f"us (direct {c['direct']['overhead_per_call_us']['p50']:.0f}), CPU per call "
            f"{c['runs_phase']['cpu_us_per_call']:.0f} us (direct {c['direct']['cpu_us_per_call']:.0f}), /healthz p99 "
            f"{c['healthz_runs_ms']['p99']:.2f} ms, {c['peak_threads']} threads")
        log(f"runs run {run + 1}/{args.runs}: paused {p['batches'][0]['kib_per_run']:.1f} KiB per run "
            f"(second batch {p['batches'][1]['kib_per_run']:.1f}), active {p['batches'][1]['active_runs_after']}; "
            f"fan-out to {f['subscribers']}: last run.finished {f['answer_to_last_finished_ms']:.0f} ms after the "
            f"answer, spread {f['finished_spread_ms']:.1f} ms, server CPU {f['server_cpu_ms']:.0f} ms")
        problems = []
        if not c["all_ended"] or c["succeeded"] != c["runs"] or c["succeeded_alone"] != 1:
            problems.append(f"{c['succeeded']} of {c['runs']} runs succeeded ({'; '.join(c['run_failures'])})")
        if c["start_failures"]:
            problems.append(f"{c['start_failures']} runs could not be started ({'; '.join(c['start_failure_examples'])})")
        if c["model_calls_recorded"] != c["runs"] * c["calls_per_run"]:
            problems.append(f"{c['model_calls_recorded']} model calls recorded, not {c['runs'] * c['calls_per_run']}")
        if c["direct_failed"] or c["healthz_errors"]:
            problems.append(f"{c['direct_failed']} direct calls and {c['healthz_errors']} /healthz requests failed")
        if not p["all_paused"] or p["start_failures"] or p["input_required"] != 2 * p["runs_per_batch"]:
            problems.append(f"{p['input_required']} of {2 * p['runs_per_batch']} runs paused")
        if not f["all_finished"] or f["closed"] or f["statuses"] != [200] or f["run_state"] != "succeeded" \
                or len(f["committed_per_subscriber"]) != 1 or len(f["transient_per_subscriber"]) != 1:
            problems.append(f"fan-out: {f['finished']} of {f['subscribers']} clients saw the run finish, {f['closed']} "
                            f"closed, statuses {f['statuses']}, committed events per client "
                            f"{f['committed_per_subscriber']}, transient {f['transient_per_subscriber']}")
        failures.extend(f"runs run {run + 1}: {problem}" for problem in problems)

    def pick(section, *path):
        values = []
        for r in runs:
            value = r[section]
            for key in path:
                value = value[key]
            values.append(value)
        return summary(values)

    first = runs[0]
    c0 = first["concurrent"]
    concurrent = {key: c0[key] for key in ("runs", "calls_per_run", "delay_ms", "deltas", "bound_ms", "workers",
                                           "job_threads", "http_client_threads")}
    for phase in ("direct_alone", "run_alone", "direct", "runs_phase"):
        concurrent[f"{phase}_wall_ms"] = pick("concurrent", phase, "wall_ms")
        concurrent[f"{phase}_wall_vs_bound"] = pick("concurrent", phase, "wall_vs_bound")
        concurrent[f"{phase}_cpu_us_per_call"] = pick("concurrent", phase, "cpu_us_per_call")
        for stat in ("p50", "p99", "max"):
            concurrent[f"{phase}_overhead_{stat}_us"] = pick("concurrent", phase, "overhead_per_call_us", stat)
    for phase in ("run_alone", "runs_phase"):
        concurrent[f"{phase}_extra_overhead_p50_us"] = pick("concurrent", phase, "extra_overhead_p50_us")
        concurrent[f"{phase}_extra_cpu_us_per_call"] = pick("concurrent", phase, "extra_cpu_us_per_call")
    for key in ("peak_threads", "threads_before", "direct_peak_threads", "succeeded", "model_calls_recorded",
                "healthz_errors"):
        concurrent[key] = pick("concurrent", key)
    concurrent["peak_rss_mib"] = summary([r["concurrent"]["peak_rss_kib"] / 1024 for r in runs])
    concurrent["direct_peak_rss_mib"] = summary([r["concurrent"]["direct_peak_rss_kib"] / 1024 for r in runs])
    for group in ("healthz_idle_ms", "healthz_direct_ms", "healthz_runs_ms", "created_to_started_ms"):
        for stat in ("count", "p50", "p99", "max"):
            concurrent[f"{group}_{stat}"] = pick("concurrent", group, stat)

    p0 = first["paused"]
    paused = {key: p0[key] for key in ("runs_per_batch", "warm_up_runs", "workers")}
    for key in ("input_required", "threads_before", "rss_kib_before"):
        paused[key] = pick("paused", key)
    paused["threads_added"] = summary([r["paused"]["batches"][1]["threads_after"] - r["paused"]["threads_before"]
                                       for r in runs])
    for index, name in ((0, "first"), (1, "second")):
        for key in ("kib_per_run", "kib_per_run_untrimmed", "kib_per_run_besides_sqlite", "active_runs_after",
                    "threads_after", "pause_all_ms", "database_bytes_per_run"):
            paused[f"{name}_{key}"] = pick("paused", "batches", index, key)

    f0 = first["fanout"]
    fanout = {key: f0[key] for key in ("subscribers", "reader_threads", "model_calls", "deltas_per_call",
                                       "committed_per_subscriber", "transient_per_subscriber")}
    for key in ("connect_ms", "catch_up_ms", "answer_to_last_finished_ms", "finished_commit_to_first_ms",
                "finished_commit_to_last_ms", "finished_spread_ms", "run_answer_to_end_ms", "alone_answer_to_end_ms",
                "events_sent", "process_cpu_ms", "readers_cpu_ms", "server_cpu_ms", "server_cpu_us_per_event_sent",
                "alone_process_cpu_ms"):
        fanout[key] = pick("fanout", key)
    for group in ("committed_latency_ms", "transient_latency_ms", "answer_to_finished_ms"):
        for stat in ("p50", "p99", "max"):
            fanout[f"{group}_{stat}"] = pick("fanout", group, stat)
    return {"concurrent": concurrent, "paused": paused, "fanout": fanout, "runs": runs}


def measure_pipeline(args, build_dir, failures):
    """pipeline_bench once, --runs repeats of each case of --pipeline-grid per containment mode: kernel time and
    CPU per step of whole scripted runs; None when pipeline_bench is not built."""
    binary = build_dir / "bin" / "pipeline_bench"
    if not binary.exists():
        return None
    argv = [str(binary), "--grid", args.pipeline_grid, "--repeat", str(args.runs),
            "--containment", args.pipeline_containment, "--previews", "off"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"pipeline_bench did not finish within {e.timeout} s") from e
    lines = done.stdout.strip().splitlines()
    if done.returncode == 2 or not lines:
        raise HarnessError(f"pipeline_bench exited with {done.returncode}:\n{done.stderr[-2000:]}")
    result = json.loads(lines[-1])
    if done.returncode != 0:
        failures.append(f"pipeline_bench exited with {done.returncode}: {done.stderr[-1500:]}")
    for mode in result["modes"]:
        if "not_measured" in mode:
            log(f"pipeline, containment {mode['containment']}: not measured ({mode['not_measured']})")
            if mode["containment"] == "none":
                failures.append(f"pipeline, containment none: {mode['not_measured']}")
            continue
        for case in mode["cases"]:
            sm = case["summary"]
            log(f"pipeline, containment {mode['containment']}, {case['tasks']}x{case['files']}: {case['succeeded']} of "
                f"{len(case['runs'])} succeeded, {sm['steps']['median']:.0f} steps, wall {sm['wall_ms']['median']:.0f} ms, "
                f"kernel {sm['kernel_ms_per_step']['median']:.2f} ms/step, CPU {sm['cpu_ms_per_step']['median']:.2f} ms/step")
            for run in case["runs"]:
                if run["state"] != "succeeded":
                    failures.append(f"pipeline, containment {mode['containment']}, {case['tasks']}x{case['files']}: "
                                    f"the run {run['state']}: {run['error']}")
    return result


# ----------------------------------------------------------------------------------------------------
# Previews

# The apps of the previews section: what a user's generated project would hold, as small as it gets.
PREVIEW_BODY = "hello from the preview app\n"
PREVIEW_APPS = {
    "static": {
        "index.html": "<!doctype html><meta charset=utf-8><title>bench</title><h1>hello from a static preview</h1>\n",
    },
    "node": {
        "package.json": json.dumps({"name": "bench-app", "version": "1.0.0", "private": True,
                                    "scripts": {"start": "node server.js"}}, indent=2) + "\n",
        "server.js": (
            "const http = require('http');\n"
            f"const body = {json.dumps(PREVIEW_BODY)};\n"
            "http.createServer((req, res) => {\n"
            "  res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body)});\n"
            "  res.end(body);\n"
            "}).listen(Number(process.env.PORT || 3000), process.env.HOST || '127.0.0.1',\n"
            "  () => console.log('listening on ' + process.env.PORT));\n"),
    },
    "python": {
        "requirements.txt": "# the standard library only\n",
        "main.py": (
            "import os\n"
            "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
            f"BODY = {PREVIEW_BODY.encode()!r}\n\n\n"
            "class Handler(BaseHTTPRequestHandler):\n"
            "    protocol_version = 'HTTP/1.1'\n\n"
            "    def do_GET(self):\n"
            "        self.send_response(200)\n"
            "        self.send_header('Content-Type', 'text/plain')\n"
            "        self.send_header('Content-Length', str(len(BODY)))\n"
            "        self.end_headers()\n"
            "        self.wfile.write(BODY)\n\n"
            "    def log_message(self, *args):\n"
            "        pass\n\n\n"
            "ThreadingHTTPServer((os.environ.get('HOST', '127.0.0.1'), int(os.environ['PORT'])), Handler).serve_forever()\n"),
    },
}
# (app, runner) pairs whose cold start is measured: the sandbox is what users get, the process runner
# the same app without containment.
PREVIEW_COLD_STARTS = (("static", "preview.static"), ("node", "preview.sandbox"), ("node", "preview.process"),
                       ("python", "preview.sandbox"), ("python", "preview.process"))
TARGET_PREVIEW_PROXY_RATIO = 0.8


class PreviewSamokoder(Samokoder):
    """`samokoder serve` with the preview runners: the bench config plus preview.sandbox (its sockets in a
    short directory), preview.process and preview.static, all three in previews.runners so that each
    start names its runner."""

    def __init__(self, build_dir, work_dir, args):
        super().__init__(build_dir, work_dir, args)
        # Unix socket paths are at most 107 bytes: the sandbox's socket directory stays near the root.
        self.socket_dir = Path(f"/tmp/skb-{os.getpid()}")

    def write_config(self, data_dir):
        path = super().write_config(data_dir)
        config = json.loads(path.read_text())
        config["plugins"] += [
            {"id": "preview.sandbox", "file": "preview_sandbox.so", "config": {"socket_dir": str(self.socket_dir)}},
            {"id": "preview.process", "file": "preview_process.so"},
            {"id": "preview.static", "file": "preview_static.so"},
        ]
        # server.listen has port 0 (the harness's --listen), so the proxy takes a free port too.
        config["previews"] = {"runners": ["preview.sandbox", "preview.process", "preview.static"],
                              "max_per_user": 16, "max_total": 16}
        path.write_text(json.dumps(config, indent=2))
        return path

    def start(self):
        self.service = self.spawn(self.work_dir / "previews", self.work_dir / "samokoder-previews.log")
        match = self.service.wait_for_line(r"samokoder listening on http://(\S+)", 60)
        self.base = match.group(1)
        wait_until(self.base, "/readyz", 200, 30, service=self.service)
        self.pid = self.service.pid
        password = secrets.token_urlsafe(18)
        body = {"email": "bench-previews@example.com", "password": password}
        expect(self.base, "POST", "/api/v1/auth/register", 202, body=body, what="register")
        self.token = json.loads(expect(self.base, "POST", "/api/v1/auth/login", 200, body=body,
                                       what="login"))["access_token"]

    def stop(self):
        super().stop()
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def project(self, app):
        """A new project holding `app`'s files; its id."""
        created = expect(self.base, "POST", "/api/v1/projects", 201, self.token,
                         {"name": f"preview bench {app}", "description": "previews section"}, what="create project")
        project_id = json.loads(created)["id"]
        for path, text in PREVIEW_APPS[app].items():
            expect(self.base, "PUT", f"/api/v1/projects/{project_id}/files/{path}", 200, self.token, text.encode(),
                   what=f"upload {path}")
        return project_id


def raw_request(host, port, method, path, headers=None, timeout=10):
    """(status, [(header, value)], body) of one request with the given headers, on a fresh connection."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


class PreviewHandle:
    """A preview being started: the POST's answer, the proxy's address and, after grant(), the headers a
    browser would send to the preview origin."""

    def __init__(self, server, project_id, view):
        self.server = server
        self.project_id = project_id
        self.view = view
        origin = re.match(r"https?://([^/:]+):(\d+)", view["url"] or "")
        if not origin:
            raise HarnessError(f"the preview of {project_id} has no url: {view}")
        self.host = origin.group(1)
        self.proxy_port = int(origin.group(2))
        self.headers = {"Host": self.host}

    def grant(self):
        """Trades the url's grant for the preview cookie, as a browser opening the link does."""
        target = "/" + self.view["url"].split("/", 3)[3]
        status, headers, body = raw_request("127.0.0.1", self.proxy_port, "GET", target, {"Host": self.host})
        cookies = [v.split(";", 1)[0] for k, v in headers if k.lower() == "set-cookie"]
        cookie = next((c for c in cookies if c.startswith("samokoder_preview=")), None)
        if status != 303 or cookie is None:
            raise HarnessError(f"the grant link of {self.project_id} answered {status} without the preview cookie: "
                               f"{body[:200].decode(errors='replace')}")
        self.headers["Cookie"] = cookie

    def get(self):
        """(status, body) of GET / through the proxy."""
        status, _, body = raw_request("127.0.0.1", self.proxy_port, "GET", "/", self.headers)
        return status, body


def start_preview(server, project_id, runner):
    """POST the preview; (seconds the POST took, its handle) or HarnessError."""
    started = time.perf_counter()
    status, _, body = request(server.base, "POST", f"/api/v1/projects/{project_id}/preview", server.token,
                              {"runner": runner})
    elapsed = time.perf_counter() - started
    if status != 202:
        raise HarnessError(f"POST preview ({runner}) answered {status}: {body[:400].decode(errors='replace')}")
    return elapsed, PreviewHandle(server, project_id, json.loads(body))


def stop_preview(server, project_id):
    expect(server.base, "DELETE", f"/api/v1/projects/{project_id}/preview", 204, server.token, what="DELETE preview")


def wait_preview_ready(server, handle, timeout=60, interval=0.01):
    """Polls GET / through the proxy (and the app's own port, when it has one) every `interval` seconds
    from now until the proxy answers 200; (seconds to the app's first answer or None, seconds to the
    proxy's first 200)."""
    started = time.perf_counter()
    port = handle.view.get("port") if handle.view.get("runner") == "preview.process" else None
    app_at = None
    while True:
        now = time.perf_counter()
        if port and app_at is None:
            try:
                raw_request("127.0.0.1", port, "GET", "/", timeout=2)
                app_at = now - started
            except OSError:
                pass
        try:
            status, body = handle.get()
            if status == 200:
                return app_at, time.perf_counter() - started
            if status not in (503,):
                raise HarnessError(f"the preview of {handle.project_id} answered {status} through the proxy: "
                                   f"{body[:300].decode(errors='replace')}")
        except OSError:
            pass
        if now - started > timeout:
            _, _, logs = request(server.base, "GET", f"/api/v1/projects/{handle.project_id}/preview/logs",
                                 server.token)
            _, _, state = request(server.base, "GET", f"/api/v1/projects/{handle.project_id}/preview", server.token)
            raise HarnessError(f"the preview of {handle.project_id} did not answer 200 through the proxy within "
                               f"{timeout} s; state {state[:400].decode(errors='replace')}; log "
                               f"{logs[-600:].decode(errors='replace')}")
        time.sleep(interval)


def cpu_seconds(pids):
    """utime + stime of these processes (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def measure_previews(args, build_dir, failures, missing):
    """A preview's cold start (POST to the first 200 through the proxy) for a static site, a Node app and a
    Python app under the sandbox and process runners; then wrk against the Node app directly and through
    the proxy (preview.process, and preview.sandbox's Unix socket bridge), paired per run. `missing`
    gets what could not be measured on this machine (no node, no sandbox) and why."""
    binary = build_dir / "bin" / "samokoder"
    for plugin in ("preview_sandbox.so", "preview_process.so", "preview_static.so"):
        if not (build_dir / "plugins" / plugin).exists():
            raise HarnessError(f"{build_dir / 'plugins' / plugin} is missing: build the preview plugins")
    if not binary.exists():
        raise HarnessError(f"{binary} is missing: build first")
    if shutil.which("wrk") is None:
        raise HarnessError("wrk is not installed (scripts/install-deps.sh test)")
    node = shutil.which("node", path="/usr/local/bin:/usr/bin:/bin")
    apps_missing = {}
    if node is None:
        apps_missing["node"] = "node is not installed (/usr/bin/node): no Node app"
    work_dir = args.work_dir
    server = PreviewSamokoder(build_dir, work_dir, args)
    result = {"cold_start": [], "throughput": [], "ratios": [], "profiles": {},
              "versions": {"node": command_output([node, "--version"]) if node else None,
                           "npm": command_output(["npm", "--version"]),
                           "python": (command_output(["/usr/bin/python3", "--version"]) or " ").split()[-1] or None,
                           "bwrap": (command_output(["bwrap", "--version"]) or " ").split()[-1] or None,
                           "socat": next(iter(re.findall(r"socat version (\S+)", command_output(["socat", "-V"]) or "")),
                                         None)}}
    runners_missing = {}
    nginx_proxy = None
    try:
        server.start()
        log(f"previews: samokoder ready on {server.base}")
        projects = {}
        for app, runner in PREVIEW_COLD_STARTS:
            if app in apps_missing or runner in runners_missing:
                continue
            projects[(app, runner)] = server.project(app)

        # Cold starts: one unmeasured start of each first in a full run (page cache, npm's own caches),
        # then --runs measured ones, each ended with DELETE before the next.
        raw = {}
        rounds = args.runs + (1 if args.warmup else 0)
        for index in range(rounds):
            for app, runner in PREVIEW_COLD_STARTS:
                if (app, runner) not in projects or runner in runners_missing:
                    continue
                project_id = projects[(app, runner)]
                started = time.perf_counter()
                try:
                    post_s, handle = start_preview(server, project_id, runner)
                except HarnessError as e:
                    if runner == "preview.sandbox" and "not active" in str(e):
                        runners_missing[runner] = str(e)
                        log(f"previews: {runner} cannot run here; its figures are skipped: {e}")
                        continue
                    raise
                handle.grant()
                app_s, ready_s = wait_preview_ready(server, handle)
                total = time.perf_counter() - started
                stop_preview(server, project_id)
                time.sleep(0.2)  # the app's process group is gone before the next start
                if args.warmup and index == 0:
                    log(f"previews: warm-up start {app:6} {runner:15} {total * 1000:7.0f} ms")
                    continue
                raw.setdefault((app, runner), []).append(
                    {"first_200_ms": total * 1000, "post_ms": post_s * 1000,
                     "app_first_answer_ms": (post_s + app_s) * 1000 if app_s is not None else None})
                log(f"previews: cold start {app:6} {runner:15} {total * 1000:7.0f} ms to the first 200 through the "
                    f"proxy (POST {post_s * 1000:.0f} ms"
                    + (f", the app answered its port at {(post_s + app_s) * 1000:.0f} ms" if app_s is not None else "")
                    + ")")
        for (app, runner), runs in raw.items():
            result["cold_start"].append({
                "app": app, "runner": runner,
                "first_200_ms": summary([r["first_200_ms"] for r in runs]),
                "post_ms": summary([r["post_ms"] for r in runs]),
                "app_first_answer_ms": summary([r["app_first_answer_ms"] for r in runs])})

        # Throughput: the Node app under preview.process (reachable directly on its port) and under
        # preview.sandbox (reachable only through the proxy), both running meanwhile.
        if "node" in apps_missing:
            return result
        handles = {}
        for runner in ("preview.process", "preview.sandbox"):
            if runner in runners_missing:
                continue
            project_id = projects[("node", runner)]
            _, handle = start_preview(server, project_id, runner)
            handle.grant()
            wait_preview_ready(server, handle)
            handles[runner] = handle
        direct_port = handles["preview.process"].view["port"]
        targets = [("direct", f"http://127.0.0.1:{direct_port}/", {})]
        for runner, handle in handles.items():
            targets.append((f"proxy ({runner})", f"http://127.0.0.1:{handle.proxy_port}/", dict(handle.headers)))
        # The same hop through nginx: what any reverse proxy costs here, with wrk and the app on the
        # same two cores.
        if Nginx.available():
            nginx_proxy = NginxReverseProxy(work_dir, direct_port)
            nginx_proxy.start()
            targets.append(("nginx reverse proxy", f"http://127.0.0.1:{nginx_proxy.port}/", {}))
        else:
            missing["previews: nginx reverse proxy"] = "nginx is not installed (scripts/install-deps.sh bench)"
        for name, url, headers in targets:
            host = headers.get("Host")
            port = int(url.rsplit(":", 1)[1].strip("/"))
            status, _, body = raw_request("127.0.0.1", port, "GET", "/", headers)
            if status != 200 or body.decode() != PREVIEW_BODY:
                raise HarnessError(f"previews: {name} ({host or url}) answered {status} {body[:200]!r}, not the app's body")
        if args.warmup:
            for name, url, headers in targets:
                run_wrk(url, 16, args.warmup, args.wrk_threads, headers=headers)
        tree_others = lambda: [p for p in process_tree(server.pid) if p != server.pid]
        measured = {}
        for run in range(args.runs):
            for connections in args.connections:
                ordered = targets if run % 2 == 0 else list(reversed(targets))
                for name, url, headers in ordered:
                    apps = tree_others()
                    before = (cpu_seconds([server.pid]), cpu_seconds(apps))
                    wrk_result = run_wrk(url, connections, args.duration, args.wrk_threads, headers=headers)
                    after = (cpu_seconds([server.pid]), cpu_seconds(apps))
                    requests = max(1, wrk_result["requests"])
                    wrk_result["samokoder_cpu_us"] = (after[0] - before[0]) * 1e6 / requests
                    # None when a child that ran (socat's per-connection forks) exited meanwhile: its time is gone.
                    app_cpu = (after[1] - before[1]) * 1e6 / requests
                    wrk_result["app_cpu_us"] = app_cpu if app_cpu >= 0 and set(apps) <= set(tree_others()) else None
                    measured.setdefault((name, connections), []).append(wrk_result)
                    errors = wrk_result["errors"]
                    log(f"previews run {run + 1}/{args.runs} {name:26} c={connections:<3} {wrk_result['rps']:9.0f} req/s"
                        f"  p50 {wrk_result['latency_us']['p50'] / 1000:6.2f} ms  p99 "
                        f"{wrk_result['latency_us']['p99'] / 1000:6.2f} ms  CPU/req samokoder "
                        f"{wrk_result['samokoder_cpu_us']:.0f} µs, app {fmt(wrk_result['app_cpu_us'])} µs"
                        + (f"  ERRORS {errors}" if any(errors.values()) else ""))
                    if errors["status"] or errors["connect"]:
                        failures.append(f"previews: {name} with {connections} connections: {errors['status']} error "
                                        f"answers, {errors['connect']} connect errors")
        for (name, connections), runs in measured.items():
            result["throughput"].append({
                "target": name, "connections": connections,
                "rps": summary([r["rps"] for r in runs]),
                "p50_ms": summary([r["latency_us"]["p50"] / 1000 for r in runs]),
                "p99_ms": summary([r["latency_us"]["p99"] / 1000 for r in runs]),
                "samokoder_cpu_us_per_request": summary([r["samokoder_cpu_us"] for r in runs]),
                "app_cpu_us_per_request": summary([r["app_cpu_us"] for r in runs]),
                "bytes_per_response": round(statistics.median(r["bytes_per_response"] for r in runs)),
                "errors": {k: sum(r["errors"][k] for r in runs) for k in runs[0]["errors"]},
                "requests": sum(r["requests"] for r in runs)})
        compared = [(runner, f"proxy ({runner})") for runner in handles]
        if nginx_proxy:
            compared.append(("nginx (reference)", "nginx reverse proxy"))
        for runner, name in compared:
            for connections in args.connections:
                direct = measured[("direct", connections)]
                proxied = measured[(name, connections)]
                # Paired by run: both measured back to back within the same run.
                result["ratios"].append({
                    "runner": runner, "connections": connections,
                    "throughput": summary([p["rps"] / d["rps"] if d["rps"] else None for d, p in zip(direct, proxied)]),
                    "p50_latency": summary([p["latency_us"]["p50"] / d["latency_us"]["p50"]
                                            if d["latency_us"]["p50"] else None for d, p in zip(direct, proxied)]),
                    "p99_latency": summary([p["latency_us"]["p99"] / d["latency_us"]["p99"]
                                            if d["latency_us"]["p99"] else None for d, p in zip(direct, proxied)])})
        if args.profile:
            for runner, handle in handles.items():
                rows = [r for r in result["ratios"] if r["runner"] == runner]
                if all(r["throughput"]["median"] >= TARGET_PREVIEW_PROXY_RATIO for r in rows):
                    continue
                url = f"http://127.0.0.1:{handle.proxy_port}/"
                key = f"previews: the Node app through the proxy ({runner}) on samokoder"
                log(f"profiling {key}")
                result["profiles"][key] = profile(
                    server, f"previews-{runner}", args, pids=[server.pid],
                    load=lambda seconds, url=url, headers=dict(handle.headers):
                        run_wrk(url, 16, seconds, args.wrk_threads, headers=headers))
        for runner in handles:
            stop_preview(server, handles[runner].project_id)
    finally:
        if nginx_proxy:
            nginx_proxy.stop()
        server.stop()
        for what, why in {**apps_missing, **runners_missing}.items():
            missing[f"previews: {what}"] = why
    return result


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def profile(server, scenario, args, pids=None, load=None):
    """Where `server` spends its CPU while wrk runs `scenario` at 16 connections (perf, cpu-clock).

    Self time by shared object and by symbol for every server; for Samokoder also the inclusive time
    of its own functions, from DWARF call graphs (the Release build keeps no frame pointers). `pids`
    (default: the server's process tree) and `load` (a function of the seconds to load for; default:
    wrk on the scenario's route) serve sections whose load is not an API route (previews)."""
    if shutil.which("perf") is None:
        return {"error": "perf is not installed (linux-perf)"}
    data = args.work_dir / f"perf-{server.name}-{scenario}.data"
    pids = ",".join(str(p) for p in (pids or process_tree(server.pid)))
    seconds = max(2, min(args.duration, 5))
    ours = server.name == "samokoder"
    call_graph = ["--call-graph", "dwarf,16384", "-F", "299"] if ours else ["-g", "-F", "999"]
    recorder = subprocess.Popen(["perf", "record", *call_graph, "-p", pids, "-o", str(data), "--", "sleep", str(seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if load is None:
        path, method, token, body = scenario_request(scenario, server)
        run_wrk(f"http://{server.base}{path}", 16, seconds, args.wrk_threads, method, token, body)
    else:
        load(seconds)
    _, err = recorder.communicate(timeout=120)
    if recorder.returncode != 0:
        return {"error": f"perf record failed: {err.strip()[-300:]}"}

    def perf_report(*options):
        return subprocess.run(["perf", "report", "-i", str(data), "--stdio", "-g", "none", *options],
                              capture_output=True, text=True, timeout=600).stdout.splitlines()

    def symbol_name(text):
        return re.split(r"\s{2,}", text.strip())[0]

    top = []
    for line in perf_report("--no-children", "--sort", "dso,symbol", "--percent-limit", "1"):
        match = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
        if match:
            top.append({"percent": float(match.group(1)), "dso": match.group(2), "symbol": symbol_name(match.group(3))})
    by_dso = {}
    for line in perf_report("--no-children", "--sort", "dso"):
        match = re.match(r"\s*([\d.]+)%\s+(\S+)\s*$", line)
        if match:
            by_dso[match.group(2)] = float(match.group(1))
    result = {"scenario": scenario, "seconds": seconds, "top_symbols": top[:25], "by_dso": by_dso}
    if ours:
        inclusive = []
        for line in perf_report("--children", "--sort", "symbol", "--percent-limit", "2"):
            match = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[[.k]\]\s+(.*)$", line)
            if match and "samokoder::" in match.group(3) and "Function_handler" not in match.group(3):
                inclusive.append({"percent": float(match.group(1)), "symbol": symbol_name(match.group(3))})
        result["inclusive"] = inclusive[:30]
    return result


# ----------------------------------------------------------------------------------------------------
# Machine and versions


def command_output(argv):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (done.stdout + done.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def machine_info():
    cpu = None
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    os_name = None
    if Path("/etc/os-release").exists():
        match = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text())
        os_name = match.group(1) if match else None
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "ram_mib": mem_kib // 1024, "kernel": platform.release(),
            "os": os_name, "loadavg_before": os.getloadavg()[0]}


def versions(build_dir):
    out = {}
    samokoder = command_output([str(build_dir / "bin" / "samokoder"), "version"])
    out["samokoder"] = samokoder.splitlines()[0].split()[-1] if samokoder else None
    out["git_commit"] = command_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    status = command_output(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    out["git_dirty"] = bool(status)
    nginx = command_output(["nginx", "-v"])
    out["nginx"] = nginx.split("/", 1)[1] if nginx and "/" in nginx else None
    wrk = command_output(["wrk", "-v"])
    out["wrk"] = wrk.splitlines()[0].split()[1] if wrk else None
    out["gcc"] = (command_output(["g++", "-dumpfullversion"]) or "").strip() or None
    if Path(SYSTEM_PYTHON).exists():
        probe = ("import json, platform, sqlite3, importlib\n"
                 "out = {'python': platform.python_version(), 'sqlite': sqlite3.sqlite_version}\n"
                 "for name in ('fastapi', 'uvicorn', 'jwt', 'pydantic', 'uvloop', 'httptools', 'starlette', 'h11'):\n"
                 "    try:\n"
                 "        out[name] = importlib.import_module(name).__version__\n"
                 "    except Exception:\n"
                 "        out[name] = None\n"
                 "print(json.dumps(out))\n")
        python = command_output([SYSTEM_PYTHON, "-c", probe])
        try:
            out.update(json.loads(python.splitlines()[-1]))
        except (ValueError, AttributeError, IndexError):
            pass
        if "jwt" in out:
            out["pyjwt"] = out.pop("jwt")
    return out


# ----------------------------------------------------------------------------------------------------
# Targets and report


def evaluate_targets(results):
    targets = []
    http_ratios = results.get("ratios", [])

    def ratio_target(target_id, scenario, threshold, title):
        rows = [r for r in http_ratios if r["scenario"] == scenario and r["throughput"]]
        if not rows:
            targets.append({"id": target_id, "title": title, "target": f">= {threshold}x", "met": None,
                            "measured": "not measured", "detail": results["missing"].get(SCENARIOS[scenario]["peer"])})
            return
        worst = min(rows, key=lambda r: r["throughput"]["median"])
        met = all(r["throughput"]["median"] >= threshold for r in rows)
        measured = ", ".join(f"{r['throughput']['median']:.2f}x at {r['connections']}c" for r in rows)
        targets.append({"id": target_id, "title": title, "target": f">= {threshold}x throughput", "met": met,
                        "measured": measured, "worst_connections": worst["connections"], "scenario": scenario})

    ratio_target("healthz_vs_nginx", "healthz", TARGET_HEALTHZ_VS_NGINX, "/healthz vs nginx static file")
    headroom = {(h["scenario"], h["connections"]): h for h in route_headroom(results)}
    for scenario in ("projects_list", "file_get", "project_create"):
        ratio_target(f"{scenario}_vs_reference", scenario, TARGET_ROUTE_VS_REFERENCE,
                     f"{SCENARIOS[scenario]['title']} vs reference")
        target = targets[-1]
        beyond = [c for (name, c), h in sorted(headroom.items()) if name == scenario and not h["reachable"]]
        if target["met"] is False and beyond:
            target["measured"] += (f"; at {', '.join(f'{c}c' for c in beyond)} the target exceeds the machine's "
                                   "HTTP ceiling")
    plugin = results.get("plugin_call")
    if plugin and plugin.get("overhead_ns"):
        overhead = plugin["overhead_ns"]["median"]
        targets.append({"id": "plugin_call_overhead", "title": "plugin call (lease) vs direct virtual call",
                        "target": f"<= {TARGET_PLUGIN_OVERHEAD_NS:.0f} ns more", "met": overhead <= TARGET_PLUGIN_OVERHEAD_NS,
                        "measured": f"+{overhead:.1f} ns"})
    else:
        targets.append({"id": "plugin_call_overhead", "title": "plugin call (lease) vs direct virtual call",
                        "target": f"<= {TARGET_PLUGIN_OVERHEAD_NS:.0f} ns more", "met": None,
                        "measured": "not measured", "detail": results["missing"].get("plugin_call")})
    llm = results.get("llm")
    if llm:
        rows = llm["overhead"]
        worst = max(r["extra_wall_p50_us"]["median"] for r in rows)
        targets.append({"id": "llm_overhead_wall", "title": "LLM gateway vs direct call, streamed completion (wall p50)",
                        "target": f"< {TARGET_LLM_OVERHEAD_US / 1000:.0f} ms more", "met": worst < TARGET_LLM_OVERHEAD_US,
                        "measured": ", ".join(f"+{r['extra_wall_p50_us']['median']:.0f} µs ({r['deltas']} deltas)"
                                              for r in rows)})
        # The CPU target is for a realistic answer; the 1-delta row is the fixed cost per call, shown beside.
        realistic = max(rows, key=lambda r: r["deltas"])
        targets.append({"id": "llm_overhead_cpu",
                        "title": f"LLM gateway vs direct call, CPU per completion of {realistic['deltas']} deltas",
                        "target": f"< {TARGET_LLM_EXTRA_CPU_PCT:.0f}% more",
                        "met": realistic["extra_cpu_pct"]["median"] < TARGET_LLM_EXTRA_CPU_PCT,
                        "measured": ", ".join(f"+{r['extra_cpu_pct']['median']:.0f}% ({r['deltas']} deltas)"
                                              for r in rows)})
        c = llm["concurrent"]
        p99 = c["healthz_load_ms_p99"]["median"]
        failed = c["failed"]["max"]
        targets.append({"id": "llm_concurrent_healthz",
                        "title": f"/healthz p99 with {c['streams']} LLM streams in flight, all completed",
                        "target": f"< {TARGET_LLM_HEALTHZ_P99_MS:.0f} ms, 0 failed",
                        "met": p99 < TARGET_LLM_HEALTHZ_P99_MS and failed == 0,
                        "measured": f"{p99:.2f} ms (idle {c['healthz_idle_ms_p99']['median']:.2f} ms), "
                                    f"{failed:.0f} failed"})
    else:
        for target_id, title in (("llm_overhead_wall", "LLM gateway vs direct call, streamed completion (wall p50)"),
                                 ("llm_overhead_cpu", "LLM gateway vs direct call, CPU per completion"),
                                 ("llm_concurrent_healthz", "/healthz p99 with LLM streams in flight")):
            targets.append({"id": target_id, "title": title, "target": "", "met": None, "measured": "not measured",
                            "detail": results["missing"].get("llm")})
    targets.extend(runs_targets(results))
    targets.extend(previews_targets(results))
    startup = results.get("startup") or {}
    ready = startup.get("ready_ms_new_database")
    if ready:
        worst = max(ready["median"], startup["ready_ms_existing_database"]["median"])
        targets.append({"id": "ready_time", "title": "cold start to /readyz ready", "target": f"< {TARGET_READY_MS:.0f} ms",
                        "met": worst < TARGET_READY_MS,
                        "measured": f"{ready['median']:.0f} ms (new database), "
                                    f"{startup['ready_ms_existing_database']['median']:.0f} ms (existing)"})
        rss = startup["idle_rss_mib"]["median"]
        targets.append({"id": "idle_rss", "title": "idle RSS", "target": f"< {TARGET_IDLE_RSS_MIB:.0f} MiB",
                        "met": rss < TARGET_IDLE_RSS_MIB, "measured": f"{rss:.1f} MiB"})
    return targets


def runs_targets(results):
    """The runs section's targets (runs_bench); "not measured" rows when it did not run."""
    runs = results.get("runs")
    ids = (("runs_overhead", "Runs: overhead per model call, runs at once ((run wall - calls x latency) / calls, p50)"),
           ("runs_kernel_overhead", "Runs: what the runs engine adds per model call over direct calls"),
           ("runs_healthz", "/healthz p99 while the runs run, all succeeded"),
           ("runs_paused_hold_nothing", "Paused runs hold no worker and no thread"))
    if not runs:
        return [{"id": target_id, "title": title, "target": "", "met": None, "measured": "not measured",
                 "detail": results["missing"].get("runs")} for target_id, title in ids]
    c, p = runs["concurrent"], runs["paused"]
    goal = f"< {TARGET_RUNS_OVERHEAD_US / 1000:.0f} ms"
    absolute = c["runs_phase_overhead_p50_us"]["median"]
    alone_extra = c["run_alone_extra_overhead_p50_us"]["median"]
    extra_cpu = c["runs_phase_extra_cpu_us_per_call"]["median"]
    p99 = c["healthz_runs_ms_p99"]["median"]
    failed = c["runs"] - c["succeeded"]["min"]
    return [
        {"id": "runs_overhead", "title": f"{ids[0][1]}, {c['runs']} runs x {c['calls_per_run']} calls, "
                                         f"{c['delay_ms']} ms latency", "target": goal,
         "met": absolute < TARGET_RUNS_OVERHEAD_US,
         "measured": f"{absolute / 1000:.1f} ms (direct calls, same load: "
                     f"{c['direct_overhead_p50_us']['median'] / 1000:.1f} ms; one run alone: "
                     f"{c['run_alone_overhead_p50_us']['median'] / 1000:.2f} ms)"},
        {"id": "runs_kernel_overhead", "title": ids[1][1], "target": f"{goal} (wall, one run alone; CPU at load)",
         "met": alone_extra < TARGET_RUNS_OVERHEAD_US and extra_cpu < TARGET_RUNS_OVERHEAD_US,
         "measured": f"wall {alone_extra / 1000:+.2f} ms; CPU {extra_cpu / 1000:+.2f} ms per call at "
                     f"{c['runs']} runs"},
        {"id": "runs_healthz", "title": f"{ids[2][1]} ({c['runs']})",
         "target": f"< {TARGET_RUNS_HEALTHZ_P99_MS:.0f} ms, 0 failed",
         "met": p99 < TARGET_RUNS_HEALTHZ_P99_MS and failed == 0,
         "measured": f"{p99:.2f} ms (idle {c['healthz_idle_ms_p99']['median']:.2f} ms), {failed:.0f} failed"},
        {"id": "runs_paused_hold_nothing", "title": f"{ids[3][1]} ({2 * p['runs_per_batch']} paused)",
         "target": "active_runs() 0, thread count unchanged",
         "met": p["second_active_runs_after"]["max"] == 0 and p["threads_added"]["max"] == 0,
         "measured": f"active_runs() {p['second_active_runs_after']['max']:.0f}, threads "
                     f"{p['threads_before']['median']:.0f} before, {p['second_threads_after']['median']:.0f} after; "
                     f"{p['first_kib_per_run']['median']:.1f} KiB per run (second batch "
                     f"{p['second_kib_per_run']['median']:.1f})"},
    ]


def previews_targets(results):
    """The previews section's targets: proxied throughput against the app called directly, per runner."""
    previews = results.get("previews")
    out = []
    for runner, target_id, title in (
            ("preview.process", "previews_proxy_throughput",
             "Previews: Node app through the proxy vs called directly (preview.process), throughput"),
            ("preview.sandbox", "previews_sandbox_proxy_throughput",
             "Previews: Node app through the proxy and the sandbox's socket bridge vs called directly, throughput")):
        goal = f">= {TARGET_PREVIEW_PROXY_RATIO}x"
        rows = [r for r in (previews or {}).get("ratios", []) if r["runner"] == runner and r["throughput"]]
        if not rows:
            why = results["missing"].get("previews") or results["missing"].get(f"previews: {runner}") \
                or results["missing"].get("previews: node")
            out.append({"id": target_id, "title": title, "target": goal, "met": None, "measured": "not measured",
                        "detail": why})
            continue
        reference = [r for r in (previews or {}).get("ratios", []) if r["runner"] == "nginx (reference)"
                     and r["throughput"]]
        measured = ", ".join(f"{r['throughput']['median']:.2f}x at {r['connections']}c" for r in rows)
        if reference:
            measured += " (nginx as the same reverse proxy: " + ", ".join(
                f"{r['throughput']['median']:.2f}x at {r['connections']}c" for r in reference) + ")"
        out.append({"id": target_id, "title": title, "target": goal,
                    "met": all(r["throughput"]["median"] >= TARGET_PREVIEW_PROXY_RATIO for r in rows),
                    "measured": measured})
    return out


def route_headroom(results):
    """Each authenticated route's target against what this machine can serve at all, per connection count.

    The ceiling is the best /healthz throughput any server reached at that connection count in the same
    run (an empty response, or nginx's static file): no server answers an authenticated route that reads
    storage faster than that here. A target above it cannot be met on this machine, whatever the server.
    """
    rps = {(row["scenario"], row["server"], row["connections"]): row["rps"]["median"]
           for row in results.get("http", []) if row.get("rps")}
    ceilings = {}
    for (scenario, _server, connections), value in rps.items():
        if scenario == "healthz":
            ceilings[connections] = max(ceilings.get(connections, 0), value)
    rows = []
    for scenario in ("projects_list", "file_get", "project_create"):
        for connections in sorted(ceilings):
            reference = rps.get((scenario, "reference", connections))
            samokoder = rps.get((scenario, "samokoder", connections))
            if not reference or not samokoder:
                continue
            needed = TARGET_ROUTE_VS_REFERENCE * reference
            ceiling = ceilings[connections]
            rows.append({"scenario": scenario, "connections": connections, "reference_rps": reference,
                         "needed_rps": needed, "ceiling_rps": ceiling, "samokoder_rps": samokoder,
                         "share_of_ceiling": samokoder / ceiling, "reachable": needed <= ceiling})
    return rows


def short_symbol(symbol, width=110):
    """A C++ symbol shortened for a table: template arguments and parameter lists elided."""
    text = symbol.replace("nlohmann::json_abi_v3_11_2::", "nlohmann::").replace("std::__cxx11::", "std::")
    text = text.replace("(anonymous namespace)", "{anon}")
    # Innermost groups first; placeholders without brackets let the enclosing group match next.
    for pattern, placeholder in ((r"\([^()]*\)", "\x01"), (r"<[^<>]*>", "\x02")):
        for _ in range(30):
            shorter = re.sub(pattern, placeholder, text)
            if shorter == text:
                break
            text = shorter
    text = text.replace("\x01", "()").replace("\x02", "<>").replace("|", "\\|")
    return text if len(text) <= width else text[:width - 3] + "..."


def uvicorn_stack(stack):
    return "asyncio event loop, h11 parser" if stack == "debian" else "uvloop event loop, httptools parser"


def fmt(value, digits=0):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def fmt_summary(s, digits=0, unit=""):
    if not s:
        return "n/a"
    return f"{fmt(s['median'], digits)}{unit} ({fmt(s['min'], digits)}–{fmt(s['max'], digits)})"


def render_markdown(results):
    if results.get("only"):
        return render_only(results)
    m, v, s = results["machine"], results["versions"], results["settings"]
    out = []
    out.append(f"# Samokoder benchmark results ({results['mode']})\n")
    out.append(f"Generated {results['generated_at']} by `bench/run_bench.py` "
               f"({'make bench' if results['mode'] == 'full' else 'smoke mode: tiny durations, figures meaningless'}). "
               "Each figure is the median of "
               f"{s['runs']} run(s) with (min–max); ratios are paired per run (both servers measured back to back).\n")
    out.append("## Machine and versions\n")
    out.append(f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_mib']:,} MiB RAM, kernel {m['kernel']}, {m['os']}")
    out.append(f"- samokoder {v.get('samokoder')} (commit {v.get('git_commit')}{', uncommitted changes' if v.get('git_dirty') else ''}), "
               f"Release build, g++ {v.get('gcc')}")
    out.append(f"- nginx {v.get('nginx')}; wrk {v.get('wrk')}")
    fast = s["reference_stack"] == "fast"
    out.append(f"- Python {v.get('python')}, FastAPI {v.get('fastapi')}, uvicorn {v.get('uvicorn')} "
               + (f"(uvloop {v.get('uvloop')}, httptools {v.get('httptools')})" if fast else f"(h11 {v.get('h11')})")
               + f", Starlette {v.get('starlette')}, pydantic {v.get('pydantic')}, PyJWT {v.get('pyjwt')}, "
               f"SQLite {v.get('sqlite')}")
    out.append(f"- settings: {s['duration']} s per wrk run, connections {s['connections']}, wrk threads "
               f"{s['wrk_threads']}, samokoder io_threads {s['io_threads']} worker_threads {s['worker_threads']}, "
               f"uvicorn workers {s['reference_workers']} ({uvicorn_stack(s['reference_stack'])}), "
               f"nginx worker_processes auto; nothing pinned")
    out.append(f"- load average (1 min) before the run: {m['loadavg_before']:.2f}, after: {m.get('loadavg_after') or 0:.2f}"
               + (" — **the machine was busy with other work; figures are noisier than usual**"
                  if max(m["loadavg_before"], m.get("loadavg_after") or 0) > 0.5 * m["nproc"] else "") + "\n")
    out.extend(render_figures(results))
    out.extend(render_appendix(results))
    return "\n".join(out)


def render_only(results):
    """The report of `--only <section>`: machine, targets, the section, failures."""
    m, v, s = results["machine"], results["versions"], results["settings"]
    out = [f"# Samokoder benchmark results: the {results['only']} section alone ({results['mode']})\n"]
    out.append(f"Generated {results['generated_at']} by `bench/run_bench.py --only {results['only']}"
               f"{' --smoke`: tiny numbers, figures meaningless' if results['mode'] == 'smoke' else '`'}. Each figure "
               f"is the median of {s['runs']} run(s) with (min–max).\n")
    out.append(f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_mib']:,} MiB RAM, kernel {m['kernel']}, {m['os']}")
    out.append(f"- samokoder {v.get('samokoder')} (commit {v.get('git_commit')}"
               f"{', uncommitted changes' if v.get('git_dirty') else ''}), Release build, g++ {v.get('gcc')}, "
               f"SQLite {v.get('sqlite')}")
    out.append(f"- settings: {', '.join(f'{k} {val}' for k, val in s.items())}")
    busy = max(m["loadavg_before"], m.get("loadavg_after") or 0) > 0.5 * m["nproc"]
    out.append(f"- load average (1 min) before the run: {m['loadavg_before']:.2f}, after: "
               f"{m.get('loadavg_after') or 0:.2f}"
               + (" — **the machine was busy with other work; figures are noisier than usual**" if busy else "") + "\n")
    out.append("## Targets\n")
    out.append("| target | goal | measured | verdict |")
    out.append("|---|---|---|---|")
    for t in results["targets"]:
        verdict = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        out.append(f"| {t['title']} | {t['target']} | {t['measured']} | {verdict} |")
    out.append("")
    out.extend({"llm": render_llm, "runs": render_runs, "previews": render_previews,
                "pipeline": render_pipeline}[results["only"]](results))
    out.extend(render_appendix(results))
    return "\n".join(out)


def render_figures(results):
    """Targets, HTTP, ratios, plugin call, start-up, memory and reload sections, as markdown lines."""
    s = results["settings"]
    out = ["## Targets\n"]
    out.append("| target | goal | measured | verdict |")
    out.append("|---|---|---|---|")
    for t in results["targets"]:
        verdict = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        out.append(f"| {t['title']} | {t['target']} | {t['measured']} | {verdict} |")
    out.append("")

    out.append("## HTTP: throughput and latency\n")
    out.append("| route | server | conns | req/s | p50 ms | p99 ms | bytes/resp | errors |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in results["http"]:
        errors = sum(row["errors"].values())
        out.append(f"| {SCENARIOS[row['scenario']]['title']} | {row['server']} | {row['connections']} | "
                   f"{fmt_summary(row['rps'])} | {fmt_summary(row['p50_ms'], 2)} | {fmt_summary(row['p99_ms'], 2)} | "
                   f"{row['bytes_per_response']} | {errors} |")
    out.append("")
    out.append("### Ratios (samokoder / peer)\n")
    out.append("| route | peer | conns | throughput ratio | p50 latency ratio (peer / samokoder) |")
    out.append("|---|---|---:|---:|---:|")
    for r in results["ratios"]:
        out.append(f"| {SCENARIOS[r['scenario']]['title']} | {r['peer']} | {r['connections']} | "
                   f"{fmt_summary(r['throughput'], 2, 'x')} | {fmt_summary(r['p50_latency'], 2, 'x')} |")
    out.append("")

    headroom = route_headroom(results)
    if headroom:
        out.append("### Route targets against the machine's HTTP ceiling\n")
        out.append("The ceiling is the best `GET /healthz` throughput of any server at the same connection count "
                   "in this run (Samokoder's empty response or nginx's static file, wrk on the same cores). "
                   f"{TARGET_ROUTE_VS_REFERENCE:.0f}x the reference above the ceiling cannot be met on this machine "
                   "by any server; the share of the ceiling is how close Samokoder's route comes to what the "
                   "machine serves at all.\n")
        out.append(f"| route | conns | reference req/s | {TARGET_ROUTE_VS_REFERENCE:.0f}x reference | ceiling req/s | "
                   "target within ceiling | samokoder req/s | share of ceiling |")
        out.append("|---|---:|---:|---:|---:|---|---:|---:|")
        for h in headroom:
            out.append(f"| {SCENARIOS[h['scenario']]['title']} | {h['connections']} | {fmt(h['reference_rps'])} | "
                       f"{fmt(h['needed_rps'])} | {fmt(h['ceiling_rps'])} | {'yes' if h['reachable'] else '**no**'} | "
                       f"{fmt(h['samokoder_rps'])} | {h['share_of_ceiling']:.0%} |")
        out.append("")

    plugin = results.get("plugin_call")
    out.append("## Plugin call\n")
    if plugin:
        out.append("| benchmark | ns per call (CPU) |")
        out.append("|---|---:|")
        for name, figures in plugin["benchmarks"].items():
            out.append(f"| {name} | {fmt_summary(figures, 2)} |")
        out.append(f"\nOverhead of a call through the plugin's lease over a direct virtual call: "
                   f"**{fmt_summary(plugin['overhead_ns'], 2, ' ns')}**.\n")
    else:
        out.append(f"Not measured: {results['missing'].get('plugin_call')}\n")

    startup = results.get("startup")
    out.append("## Start-up and memory\n")
    if startup:
        out.append(f"- spawn to first 200 from /readyz, new database: {fmt_summary(startup['ready_ms_new_database'], 1, ' ms')}")
        out.append(f"- spawn to first 200 from /readyz, existing database: {fmt_summary(startup['ready_ms_existing_database'], 1, ' ms')}")
        out.append(f"- spawn to the \"listening\" line, new database: {fmt_summary(startup['listening_ms_new_database'], 1, ' ms')}")
        out.append(f"- idle RSS right after start-up: {fmt_summary(startup['idle_rss_mib'], 1, ' MiB')} "
                   f"({s['starts']} starts)")
    memory = results.get("memory", {})
    if memory:
        out.append("")
        out.append("| server (whole process tree) | idle RSS MiB | peak RSS under load MiB | RSS after load MiB |")
        out.append("|---|---:|---:|---:|")
        for name, figures in memory.items():
            out.append(f"| {name} | {fmt(figures['idle_mib'], 1)} | {fmt_summary(figures['peak_under_load_mib'], 1)} | "
                       f"{fmt(figures['after_load_mib'], 1)} |")
    out.append("")

    reload = results.get("reload")
    out.append("## Hot reload under load\n")
    if reload:
        out.append(f"{reload['reloads_per_run']} reloads per run (alternating versions 1.0.0 and 2.0.0 of the bench "
                   f"agent, 20 ms apart) while wrk sends GET /echo through the plugin on {reload['connections']} "
                   "connections; in-process (reload_bench: PluginManager + http::Server), so the figures are the "
                   "reload mechanism's own, without the admin route's authentication and audit write.\n")
        out.append(f"- swap latency p50: {fmt_summary(reload['swap_p50_us'], 0, ' µs')}; p99: "
                   f"{fmt_summary(reload['swap_p99_us'], 0, ' µs')}; max: {fmt_summary(reload['swap_max_us'], 0, ' µs')}")
        out.append(f"- drain time p50: {fmt_summary(reload['drain_p50_us'], 0, ' µs')}; max: "
                   f"{fmt_summary(reload['drain_max_us'], 0, ' µs')}")
        out.append(f"- throughput during reloads: {fmt_summary(reload['rps'], 0, ' req/s')}; failed requests: "
                   f"{fmt_summary(reload['failed_requests'])}\n")

    out.extend(render_llm(results))
    out.extend(render_runs(results))
    out.extend(render_previews(results))
    out.extend(render_pipeline(results))
    return out


def render_llm(results):
    llm = results.get("llm")
    out = ["## LLM gateway\n"]
    if not llm:
        out.append(f"Not measured: {results['missing'].get('llm')}\n")
        return out
    out.append("A streamed chat completion to the scripted model server (a separate process on loopback, no "
               "artificial delay), made directly on the kernel's outbound HTTP transport (SSE parser and one JSON "
               "parse per chunk) and through `Application::llm()->complete` (gateway, llm.openai plugin, outbound "
               "HTTP, the storage record, metrics), in alternating blocks in one process (llm_bench). Wall time per "
               "call and process CPU time per call, "
               f"{llm['overhead'][0]['calls_per_run']} calls of each per run.\n")
    out.append("| deltas (answer bytes) | direct p50 µs | gateway p50 µs | extra p50 µs | direct p99 µs | "
               "gateway p99 µs | extra p99 µs | direct CPU µs/call | gateway CPU µs/call | extra CPU |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in llm["overhead"]:
        out.append(f"| {r['deltas']} ({r['answer_bytes']:,}) | {fmt_summary(r['direct_wall_p50_us'])} | "
                   f"{fmt_summary(r['gateway_wall_p50_us'])} | {fmt_summary(r['extra_wall_p50_us'])} | "
                   f"{fmt_summary(r['direct_wall_p99_us'])} | {fmt_summary(r['gateway_wall_p99_us'])} | "
                   f"{fmt_summary(r['extra_wall_p99_us'])} | {fmt_summary(r['direct_cpu_us_per_call'])} | "
                   f"{fmt_summary(r['gateway_cpu_us_per_call'])} | {fmt_summary(r['extra_cpu_pct'], 1, '%')} |")
    c = llm["concurrent"]
    out.append("")
    out.append(f"{c['streams']} gateway calls at once ({c['caller_threads']} caller threads: `complete()` blocks its "
               f"thread) against a model server that answers each after {c['delay_ms']} ms and then streams "
               f"{c['deltas']} deltas, while one client sends `GET /healthz` to the same Application over a "
               "keep-alive connection every 5 ms; idle first, then for the whole load.\n")
    out.append(f"- calls failed: {fmt_summary(c['failed'])}; /healthz errors: {fmt_summary(c['healthz_errors'])}")
    out.append(f"- all {c['streams']} done in {fmt_summary(c['wall_ms'], 0, ' ms')}; one such call alone: "
               f"{fmt_summary(c['one_call_alone_ms'], 0, ' ms')}; per call p50 {fmt_summary(c['call_ms_p50'], 0, ' ms')}, "
               f"p99 {fmt_summary(c['call_ms_p99'], 0, ' ms')}")
    out.append(f"- peak of the process: {fmt_summary(c['peak_threads'])} threads (before: "
               f"{fmt_summary(c['threads_before'])}), RSS {fmt_summary(c['peak_rss_mib'], 1, ' MiB')} (before: "
               f"{fmt_summary(c['rss_before_mib'], 1, ' MiB')})\n")
    out.append("| GET /healthz | samples | p50 ms | p99 ms | max ms |")
    out.append("|---|---:|---:|---:|---:|")
    for label, group in (("idle", "healthz_idle_ms"), (f"{c['streams']} streams in flight", "healthz_load_ms")):
        out.append(f"| {label} | {fmt_summary(c[group + '_count'])} | {fmt_summary(c[group + '_p50'], 2)} | "
                   f"{fmt_summary(c[group + '_p99'], 2)} | {fmt_summary(c[group + '_max'], 2)} |")
    out.append("")
    return out


def render_runs(results):
    runs = results.get("runs")
    out = ["## Runs engine\n"]
    if not runs:
        out.append(f"Not measured: {results['missing'].get('runs')}\n")
        return out
    c, p, f = runs["concurrent"], runs["paused"], runs["fanout"]
    out.append(f"runs_bench: a kernel in-process (storage.sqlite, llm.openai against the scripted model server in a "
               f"child process, the runs suite's planner and finisher agents), driven over HTTP. {c['runs']} runs "
               f"started at once (one client thread each), each making {c['calls_per_run']} model calls that answer "
               f"after {c['delay_ms']} ms with {c['deltas']} deltas; the reference, in the same process just before: "
               f"{c['runs']} chains of {c['calls_per_run']} direct calls (the outbound transport, as llm_bench's), "
               "one thread each. Overhead per call = (wall of the run or chain - calls x latency) / calls; a run's "
               "wall is its stored created_at to finished_at. CPU: getrusage of the process over the phase / model "
               f"calls. runs.workers {c['workers']} ({c['job_threads']} job threads), http_client.threads "
               f"{c['http_client_threads']}.\n")
    out.append("| | wall ms | wall / bound | overhead per call p50 µs | p99 µs | max µs | CPU µs per call |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for label, phase in (("one direct chain alone", "direct_alone"), ("one run alone", "run_alone"),
                         (f"{c['runs']} direct chains", "direct"), (f"{c['runs']} runs", "runs_phase")):
        out.append(f"| {label} | {fmt_summary(c[phase + '_wall_ms'])} | {fmt_summary(c[phase + '_wall_vs_bound'], 3)} | "
                   f"{fmt_summary(c[phase + '_overhead_p50_us'])} | {fmt_summary(c[phase + '_overhead_p99_us'])} | "
                   f"{fmt_summary(c[phase + '_overhead_max_us'])} | {fmt_summary(c[phase + '_cpu_us_per_call'])} |")
    out.append("")
    out.append(f"- the runs engine against direct calls: overhead per call p50 "
               f"{fmt_summary(c['run_alone_extra_overhead_p50_us'], 0, ' µs')} alone, "
               f"{fmt_summary(c['runs_phase_extra_overhead_p50_us'], 0, ' µs')} at {c['runs']} runs; CPU per call "
               f"{fmt_summary(c['runs_phase_extra_cpu_us_per_call'], 0, ' µs')} at {c['runs']} runs")
    out.append(f"- runs succeeded: {fmt_summary(c['succeeded'])} of {c['runs']}; model calls recorded: "
               f"{fmt_summary(c['model_calls_recorded'])}; created to started (claimed and loaded) p50 "
               f"{fmt_summary(c['created_to_started_ms_p50'], 1, ' ms')}, max "
               f"{fmt_summary(c['created_to_started_ms_max'], 1, ' ms')}")
    out.append(f"- threads of the process: {fmt_summary(c['peak_threads'])} at the peak of the runs "
               f"({fmt_summary(c['threads_before'])} before: the kernel, its {c['job_threads']} job threads and the "
               f"{c['runs']} client threads), RSS {fmt_summary(c['peak_rss_mib'], 1, ' MiB')}\n")
    out.append("| GET /healthz (one client, every 5 ms) | samples | p50 ms | p99 ms | max ms |")
    out.append("|---|---:|---:|---:|---:|")
    for label, group in (("idle", "healthz_idle_ms"), (f"{c['runs']} direct chains", "healthz_direct_ms"),
                         (f"{c['runs']} runs", "healthz_runs_ms")):
        out.append(f"| {label} | {fmt_summary(c[group + '_count'])} | {fmt_summary(c[group + '_p50'], 2)} | "
                   f"{fmt_summary(c[group + '_p99'], 2)} | {fmt_summary(c[group + '_max'], 2)} |")
    out.append("")
    out.append(f"Paused runs: {p['warm_up_runs']} warm-up runs first (every worker thread used once), then two batches of "
               f"{p['runs_per_batch']} runs that pause in input_required (the planner's \"[ask]\"), started by 8 client "
               "threads; VmRSS after malloc_trim(0), before and after each batch, per run; SQLite's heap "
               "(sqlite3_memory_used) apart.\n")
    out.append("| batch | KiB per run | untrimmed | besides SQLite's heap | database bytes per run | all paused in ms | "
               "active_runs() after | threads after |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("first", "second"):
        out.append(f"| {name} | {fmt_summary(p[name + '_kib_per_run'], 1)} | "
                   f"{fmt_summary(p[name + '_kib_per_run_untrimmed'], 1)} | "
                   f"{fmt_summary(p[name + '_kib_per_run_besides_sqlite'], 1)} | "
                   f"{fmt_summary(p[name + '_database_bytes_per_run'])} | {fmt_summary(p[name + '_pause_all_ms'])} | "
                   f"{fmt_summary(p[name + '_active_runs_after'])} | {fmt_summary(p[name + '_threads_after'])} |")
    out.append(f"\nThreads before: {fmt_summary(p['threads_before'])}.\n")
    out.append(f"SSE fan-out: {f['subscribers']} clients of one run's events (GET /api/v1/runs/{{id}}/events), read by "
               f"{f['reader_threads']} epoll threads in the same process. The run pauses at its question, every "
               "client connects and catches up, then the answer lets it finish: the planner's call replayed from the "
               f"record, then {f['model_calls']} model calls (no delay) of {f['deltas_per_call']} deltas, each delta a "
               "transient "
               f"event. Per client: {', '.join(map(str, f['committed_per_subscriber']))} committed and "
               f"{', '.join(map(str, f['transient_per_subscriber']))} "
               "transient events after the answer. Latency = receipt - the event's created_at.\n")
    out.append(f"- connect {fmt_summary(f['connect_ms'], 0, ' ms')}, all caught up "
               f"{fmt_summary(f['catch_up_ms'], 0, ' ms')} after the first connect")
    out.append(f"- answer to the last client's run.finished: {fmt_summary(f['answer_to_last_finished_ms'], 0, ' ms')}; "
               f"the run itself, answer to finished_at: {fmt_summary(f['run_answer_to_end_ms'], 0, ' ms')} "
               f"(nobody watching: {fmt_summary(f['alone_answer_to_end_ms'], 1, ' ms')})")
    out.append(f"- run.finished's commit to its first receipt {fmt_summary(f['finished_commit_to_first_ms'], 1, ' ms')}, "
               f"to its last {fmt_summary(f['finished_commit_to_last_ms'], 1, ' ms')} (spread "
               f"{fmt_summary(f['finished_spread_ms'], 1, ' ms')})")
    out.append(f"- server CPU (the process's, minus the reader threads'): {fmt_summary(f['server_cpu_ms'], 0, ' ms')} for "
               f"{fmt_summary(f['events_sent'])} events sent, {fmt_summary(f['server_cpu_us_per_event_sent'], 2, ' µs')} "
               f"each; the readers {fmt_summary(f['readers_cpu_ms'], 0, ' ms')}\n")
    out.append("| event latency at the clients | p50 ms | p99 ms | max ms |")
    out.append("|---|---:|---:|---:|")
    for label, group in (("committed", "committed_latency_ms"), ("transient (llm.delta)", "transient_latency_ms")):
        out.append(f"| {label} | {fmt_summary(f[group + '_p50'], 1)} | {fmt_summary(f[group + '_p99'], 1)} | "
                   f"{fmt_summary(f[group + '_max'], 1)} |")
    out.append("")
    return out


def render_pipeline(results):
    pipeline = results.get("pipeline")
    out = ["## Pipeline\n"]
    if not pipeline:
        out.append(f"Not measured: {results['missing'].get('pipeline')}\n")
        return out
    st = pipeline["settings"]
    out.append("pipeline_bench: one kernel process per containment mode (storage.sqlite, auth.local, llm.openai "
               "against the scripted model server in a child process, the default pipeline's eleven agent plugins); "
               "each run a generated app of T tasks writing F files each (tests/e2e/scaled_app_script.hpp), "
               "one `node --check` per task and the troubleshooter's smoke check of the app after each task, the "
               "model answering at once"
               + (", the spec writer's question and the end-of-epic review answered over the API" if st["ask_spec"]
                  else ", the end-of-epic review answered over the API")
               + f"; previews {'on' if st['previews'] else 'off'}. Kernel time = wall - user wait - the union of "
               "command and model-call intervals; CPU = getrusage of the kernel's process over the run (commands "
               "and the app are children, the model server another process). Medians of "
               f"{st['repeat']} run(s) per case, (min–max).\n")
    for mode in pipeline["modes"]:
        out.append(f"### Agents' commands: runs.command_containment `{mode['containment']}`\n")
        if "not_measured" in mode:
            out.append(f"Not measured: {mode['not_measured']}\n")
            continue
        out.append("| T x F | steps | model calls | commands | wall ms | commands ms | model calls ms | user wait ms | "
                   "kernel ms | kernel ms/step | CPU ms | CPU ms/step | kernel/step vs first | CPU/step vs first |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for case in mode["cases"]:
            sm, r = case["summary"], case["ratio_to_first"]
            med = lambda key, digits=0: fmt(sm[key]["median"], digits)
            out.append(f"| {case['tasks']} x {case['files']} | {med('steps')} | {med('model_calls')} | {med('commands')} | "
                       f"{fmt_summary(sm['wall_ms'])} | {med('command_wall_ms')} | {med('model_wall_ms')} | "
                       f"{med('user_wait_ms')} | {fmt_summary(sm['kernel_ms'])} | "
                       f"{fmt_summary(sm['kernel_ms_per_step'], 2)} | {med('cpu_ms')} | "
                       f"{fmt_summary(sm['cpu_ms_per_step'], 2)} | {r['kernel_ms_per_step']:.2f}x | "
                       f"{r['cpu_ms_per_step']:.2f}x |")
        out.append("")
        last = mode["cases"][-1]
        agents = sorted(last["summary"]["agents"].items(), key=lambda kv: -kv[1]["kernel_ms"])
        out.append(f"Where the kernel time of the {last['tasks']} x {last['files']} runs goes, by the agent whose step "
                   "it is: each attempt (step.started to step.committed, or to run.paused for a step that asked and "
                   "ran again once answered; a fan-out's branches commit as steps of their own within one attempt) "
                   "minus the command and model-call intervals inside it; medians. Outside the attempts (claiming, "
                   "choosing the next agent, resuming after an answer): "
                   f"{fmt(last['summary']['between_steps_ms']['median'], 0)} ms. Kernel: "
                   f"{fmt(mode.get('rss_kib_after', 0) / 1024, 0)} MiB RSS, {mode.get('threads_after', 0)} threads "
                   "after the runs.\n")
        out.append("| agent | steps committed | attempts | step wall ms | kernel ms | kernel ms per attempt |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for name, a in agents:
            per = a["kernel_ms"] / a["attempts"] if a.get("attempts") else 0
            out.append(f"| {name} | {fmt(a['steps'])} | {fmt(a.get('attempts', 0))} | {fmt(a['step_wall_ms'], 0)} | "
                       f"{fmt(a['kernel_ms'], 0)} | {fmt(per, 2)} |")
        out.append("")
    return out


def render_previews(results):
    previews = results.get("previews")
    out = ["## Previews\n"]
    if not previews:
        out.append(f"Not measured: {results['missing'].get('previews')}\n")
        return out
    v = previews.get("versions", {})
    out.append("`samokoder serve` with preview.sandbox, preview.process and preview.static (defaults, the sandbox's "
               "sockets under /tmp), driven over its API as the console does: POST the preview, trade its url's "
               "grant for the preview cookie on the proxy, then `GET /` through the proxy "
               "(`Host: p-<id>.localhost`) every 10 ms. Apps: a static `index.html`; a Node app without "
               "dependencies (`npm run start` -> `node server.js`, `http.createServer` answering a 27-byte body); a "
               "Python app of the standard library (`python3 main.py`, `ThreadingHTTPServer`). "
               f"node {v.get('node')}, npm {v.get('npm')}, Python {v.get('python')}, bubblewrap {v.get('bwrap')}, "
               f"socat {v.get('socat')}.\n")
    out.append("| app | runner | POST to first 200 through the proxy, ms | POST answered, ms | "
               "the app answered its own port, ms |")
    out.append("|---|---|---:|---:|---:|")
    for row in previews["cold_start"]:
        out.append(f"| {row['app']} | {row['runner']} | {fmt_summary(row['first_200_ms'])} | "
                   f"{fmt_summary(row['post_ms'], 1)} | {fmt_summary(row['app_first_answer_ms'])} |")
    out.append("")
    if previews["throughput"]:
        out.append("wrk on `GET /` of the Node app: directly on its loopback port (preview.process), and through the "
                   "proxy with the preview's Host and cookie, for the same app under preview.process (proxy -> TCP "
                   "-> app) and under preview.sandbox (proxy -> Unix socket -> socat in the sandbox -> app), one "
                   "after the other in alternating order per run, same threads, connections and duration. CPU per "
                   "request from /proc: the samokoder process (all its threads) and its child processes (the "
                   "apps, bwrap, socat).\n")
        out.append("| target | conns | req/s | p50 ms | p99 ms | samokoder CPU µs/req | app CPU µs/req | errors |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for row in previews["throughput"]:
            out.append(f"| {row['target']} | {row['connections']} | {fmt_summary(row['rps'])} | "
                       f"{fmt_summary(row['p50_ms'], 2)} | {fmt_summary(row['p99_ms'], 2)} | "
                       f"{fmt_summary(row['samokoder_cpu_us_per_request'])} | "
                       f"{fmt_summary(row['app_cpu_us_per_request'])} | {sum(row['errors'].values())} |")
        out.append("")
        out.append("| proxied through | conns | throughput, proxied / direct | p50 latency, proxied / direct | "
                   "p99 latency, proxied / direct |")
        out.append("|---|---:|---:|---:|---:|")
        for r in previews["ratios"]:
            out.append(f"| {r['runner']} | {r['connections']} | {fmt_summary(r['throughput'], 2, 'x')} | "
                       f"{fmt_summary(r['p50_latency'], 2, 'x')} | {fmt_summary(r['p99_latency'], 2, 'x')} |")
        out.append("")
    return out


def render_appendix(results):
    """Profiles, analysis, what was not measured and harness failures, as markdown lines."""
    out = []
    if results.get("profiles"):
        out.append("## Profiles of missed targets\n")
        out.append("`perf record` (cpu-clock) of each server's process tree while wrk ran the route at 16 connections "
                   "for 5 s: Samokoder with DWARF call graphs at 299 Hz, the peers with frame-pointer call graphs at "
                   "999 Hz. Self time of symbols over 1%, then, for Samokoder, the inclusive time of its own "
                   "functions.\n")
        for key, prof in results["profiles"].items():
            out.append(f"### {key}\n")
            if "error" in prof:
                out.append(f"{prof['error']}\n")
                continue
            shares = ", ".join(f"{dso} {pct:.1f}%" for dso, pct in list(prof["by_dso"].items())[:8])
            out.append(f"By shared object: {shares}\n")
            out.append("| self % | object | symbol |")
            out.append("|---:|---|---|")
            for entry in prof["top_symbols"][:15]:
                out.append(f"| {entry['percent']:.1f} | {entry['dso']} | `{short_symbol(entry['symbol'])}` |")
            out.append("")
            if prof.get("inclusive"):
                out.append("Inclusive time of Samokoder's own functions (DWARF call graphs):\n")
                out.append("| total % | function |")
                out.append("|---:|---|")
                for entry in prof["inclusive"]:
                    out.append(f"| {entry['percent']:.1f} | `{short_symbol(entry['symbol'])}` |")
                out.append("")

    if results.get("analysis"):
        out.append("## Why targets are missed and what would close the gap\n")
        out.append(results["analysis"].strip() + "\n")

    if results["missing"]:
        out.append("## Not measured\n")
        for what, why in results["missing"].items():
            out.append(f"- {what}: {why}")
        out.append("")
    if results["failures"]:
        out.append("## Harness failures\n")
        for failure in results["failures"]:
            out.append(f"- {failure}")
        out.append("")
    return out


DOCS_PAGE = ROOT / "docs" / "performance.md"
DOCS_BEGIN = "<!-- bench:latest:begin -->"
DOCS_END = "<!-- bench:latest:end -->"


def update_docs(results):
    """Replaces the block between the markers in docs/performance.md with this run's tables."""
    text = DOCS_PAGE.read_text()
    begin, end = text.find(DOCS_BEGIN), text.find(DOCS_END)
    if begin < 0 or end < begin:
        log(f"{DOCS_PAGE} has no {DOCS_BEGIN} ... {DOCS_END} block; not updated")
        return
    m, v = results["machine"], results["versions"]
    lines = [f"From the full run of {results['generated_at'][:10]} (commit {v.get('git_commit')}"
             f"{' with uncommitted changes' if v.get('git_dirty') else ''}) on {m['nproc']} CPUs ({m['cpu_model']}), "
             f"{m['ram_mib']:,} MiB RAM, kernel {m['kernel']}; load average {m['loadavg_before']:.2f} before and "
             f"{m.get('loadavg_after') or 0:.2f} after. Versions, profiles and the analysis of missed targets: "
             "[`bench/results/latest.md`](../bench/results/latest.md).\n"]
    for line in render_figures(results):
        lines.append("#" + line if line.startswith("#") else line)
    block = DOCS_BEGIN + "\n" + "\n".join(lines).rstrip() + "\n" + DOCS_END
    DOCS_PAGE.write_text(text[:begin] + block + text[end + len(DOCS_END):])


# ----------------------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny durations; fail only when the harness breaks")
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build-bench")
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--runs", type=int, help="runs per figure (full: 3)")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (full: 5)")
    parser.add_argument("--connections", help="comma-separated (full: 1,16,64)")
    parser.add_argument("--starts", type=int, help="cold starts (full: 10)")
    parser.add_argument("--io-threads", type=int, default=2)
    parser.add_argument("--worker-threads", type=int, default=4)
    parser.add_argument("--reference-workers", type=int, default=os.cpu_count(), help="uvicorn workers (one per core)")
    parser.add_argument("--reference-stack", choices=sorted(Reference.STACKS), default="debian",
                        help="debian: asyncio + h11, what python3-uvicorn brings (default); "
                             "fast: uvloop + httptools (python3-uvloop python3-httptools)")
    parser.add_argument("--llm-calls", type=int, help="llm_bench calls per variant and stream length (full: 1000)")
    parser.add_argument("--llm-streams", type=int, help="concurrent LLM streams (full: 500)")
    parser.add_argument("--runs-concurrent", type=int, help="runs_bench: runs started at once (full: 200)")
    parser.add_argument("--runs-subscribers", type=int, help="runs_bench: SSE clients of one run (full: 1000)")
    parser.add_argument("--pipeline-grid", help="pipeline_bench: TxF apps, comma-separated "
                        "(full: 1x1,2x4,4x4,4x16,8x8; smoke: 1x1,2x2)")
    parser.add_argument("--pipeline-containment", help="pipeline_bench: runs.command_containment modes, "
                        "comma-separated (full: none,preview.sandbox; smoke: none)")
    parser.add_argument("--only", choices=("llm", "runs", "previews", "pipeline"),
                        help="measure only this section (no servers, no wrk) and write its report to --out-dir")
    parser.add_argument("--no-profile", action="store_true", help="skip perf profiles of missed targets")
    parser.add_argument("--analysis", type=Path, default=BENCH_DIR / "results" / "analysis.md",
                        help="hand-written notes on missed targets, included in the full report when present")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (databases, logs)")
    parser.add_argument("--work-root", type=Path, help="where the work directory (databases, workspaces, logs) "
                        "is created; default: the system's temporary directory")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="measure nothing: write latest.md (and, from the default results directory, the "
                             "docs tables) again from a saved latest.json, with the current --analysis file")
    parser.add_argument("--wait-idle", type=int, help="seconds to wait for the machine to quiet down "
                        "(1-minute load average under half the CPUs) before measuring (full: 300, smoke: 0)")
    args = parser.parse_args(argv)
    full = not args.smoke
    args.runs = args.runs or (3 if full else 1)
    args.duration = args.duration or (5 if full else 1)
    args.connections = [int(c) for c in (args.connections or ("1,16,64" if full else "16")).split(",")]
    args.starts = args.starts or (10 if full else 2)
    args.warmup = 2 if full else 0
    args.wrk_threads = min(2, os.cpu_count() or 1)
    args.plugin_min_time = 0.5 if full else 0.01
    args.reloads = 100 if full else 10
    args.reload_connections = 16
    args.reload_duration = 8 if full else 3
    args.llm_calls = args.llm_calls or (1000 if full else 20)
    args.llm_warmup = 50 if full else 2
    args.llm_block = 25 if full else 5
    args.llm_streams = args.llm_streams or (500 if full else 20)
    args.llm_delay_ms = 1000 if full else 200
    args.llm_stream_deltas = 200 if full else 20
    args.llm_idle_ms = 3000 if full else 300
    # runs_bench: 200 runs of ten 1 s model calls (the issue's figures); smoke: a few short ones.
    args.run_count = args.runs_concurrent or (200 if full else 10)
    args.run_calls = 10 if full else 3
    args.run_delay_ms = 1000 if full else 200
    args.run_deltas = 20 if full else 5
    args.run_idle_ms = 2000 if full else 300
    args.run_paused = 500 if full else 20
    args.run_subscribers = args.runs_subscribers or (1000 if full else 20)
    args.run_fanout_calls = 5 if full else 2
    # pipeline_bench: the issue's grid, unconfined and sandboxed; smoke: two tiny apps, unconfined.
    args.pipeline_grid = args.pipeline_grid or ("1x1,2x4,4x4,4x16,8x8" if full else "1x1,2x2")
    args.pipeline_containment = args.pipeline_containment or ("none,preview.sandbox" if full else "none")
    args.profile = full and not args.no_profile
    args.wait_idle = args.wait_idle if args.wait_idle is not None else (300 if full else 0)
    return args


def wait_for_idle(seconds):
    """Waits up to `seconds` for other work on the machine to finish; measuring goes ahead regardless."""
    limit = 0.5 * (os.cpu_count() or 1)
    deadline = time.monotonic() + seconds
    if os.getloadavg()[0] > limit and seconds > 0:
        log(f"load average {os.getloadavg()[0]:.2f} > {limit:.1f}: waiting up to {seconds} s for the machine to quiet down")
    while os.getloadavg()[0] > limit and time.monotonic() < deadline:
        time.sleep(5)


def measure_only(args):
    """--only llm|runs|previews|pipeline: that section alone (no peers), its targets and its report in --out-dir."""
    wait_for_idle(args.wait_idle)
    started = time.monotonic()
    mode = "smoke" if args.smoke else "full"
    log(f"{mode} run of the {args.only} section alone, build {args.build_dir}")
    settings = {"runs": args.runs}
    if args.only == "llm":
        settings.update({"llm_calls": args.llm_calls, "llm_streams": args.llm_streams, "llm_delay_ms": args.llm_delay_ms,
                         "llm_stream_deltas": args.llm_stream_deltas})
    elif args.only == "pipeline":
        settings.update({"pipeline_grid": args.pipeline_grid, "pipeline_containment": args.pipeline_containment})
    elif args.only == "previews":
        settings.update({"duration": args.duration, "connections": args.connections, "wrk_threads": args.wrk_threads,
                         "io_threads": args.io_threads, "worker_threads": args.worker_threads, "warmup": args.warmup})
    else:
        settings.update({"runs_concurrent": args.run_count, "runs_calls": args.run_calls,
                         "runs_delay_ms": args.run_delay_ms, "runs_deltas": args.run_deltas,
                         "runs_paused": args.run_paused, "runs_subscribers": args.run_subscribers})
    results = {"schema": 1, "mode": mode, "only": args.only,
               "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": machine_info(), "versions": versions(args.build_dir), "settings": settings,
               "missing": {}, "failures": []}
    args.work_dir = Path(tempfile.mkdtemp(prefix="samokoder-bench-", dir=args.work_root))
    try:
        if args.only == "previews":
            results["previews"] = measure_previews(args, args.build_dir, results["failures"], results["missing"])
            results["profiles"] = results["previews"].pop("profiles", {})
        else:
            measure = {"llm": measure_llm, "runs": measure_runs, "pipeline": measure_pipeline}[args.only]
            results[args.only] = measure(args, args.build_dir, results["failures"])
            if results[args.only] is None:
                raise HarnessError(f"the {args.only} benchmark is not built in {args.build_dir}")
    except HarnessError as e:
        results["failures"].insert(0, f"harness error: {e}")
    results["targets"] = [t for t in evaluate_targets(results) if t["id"].startswith(args.only + "_")]
    results["machine"]["loadavg_after"] = os.getloadavg()[0]
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    (args.out_dir / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out_dir / "latest.md").write_text(render_markdown(results) + "\n")
    log(f"wrote {args.out_dir / 'latest.md'} and latest.json in {results['elapsed_seconds']} s")
    for t in results["targets"]:
        log(f"target {t['title']}: {t['measured']} ({ {True: 'met', False: 'missed', None: 'not measured'}[t['met']] })")
    for failure in results["failures"]:
        print(f"bench: {failure}", file=sys.stderr)
    if results["failures"]:
        print(f"bench: logs kept in {args.work_dir}", file=sys.stderr)
        return 1
    if not args.keep:
        subprocess.run(["rm", "-rf", "--", str(args.work_dir)], check=False)
    return 0


def main(argv):
    args = parse_args(argv)
    args.build_dir = args.build_dir.resolve()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.render:
        results = json.loads(args.render.read_text())
        results["targets"] = evaluate_targets(results)  # the current rules, on the saved figures
        if results.get("only"):
            results["targets"] = [t for t in results["targets"] if t["id"].startswith(results["only"] + "_")]
        elif results["mode"] == "full" and args.analysis.exists():
            results["analysis"] = args.analysis.read_text()
        (args.out_dir / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out_dir / "latest.md").write_text(render_markdown(results) + "\n")
        if results["mode"] == "full" and not results.get("only") and \
                args.out_dir.resolve() == (BENCH_DIR / "results").resolve():
            update_docs(results)
        return 0
    if args.only:
        return measure_only(args)
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is not installed (scripts/install-deps.sh test)", file=sys.stderr)
            return 2
    wait_for_idle(args.wait_idle)
    args.work_dir = Path(tempfile.mkdtemp(prefix="samokoder-bench-", dir=args.work_root))
    started = time.monotonic()
    mode = "smoke" if args.smoke else "full"
    log(f"{mode} run, build {args.build_dir}, work directory {args.work_dir}")
    results = {"schema": 1, "mode": mode,
               "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": machine_info(), "versions": versions(args.build_dir),
               "settings": {"runs": args.runs, "duration": args.duration, "connections": args.connections,
                            "starts": args.starts, "wrk_threads": args.wrk_threads, "io_threads": args.io_threads,
                            "worker_threads": args.worker_threads, "reference_workers": args.reference_workers,
                            "reference_stack": args.reference_stack,
                            "llm_calls": args.llm_calls, "llm_streams": args.llm_streams,
                            "llm_delay_ms": args.llm_delay_ms, "llm_stream_deltas": args.llm_stream_deltas,
                            "runs_concurrent": args.run_count, "runs_calls": args.run_calls,
                            "runs_delay_ms": args.run_delay_ms, "runs_paused": args.run_paused,
                            "runs_subscribers": args.run_subscribers, "warmup": args.warmup,
                            "pipeline_grid": args.pipeline_grid, "pipeline_containment": args.pipeline_containment},
               "missing": {}, "failures": []}
    content = file_content()
    servers = []
    error = None
    try:
        samokoder = Samokoder(args.build_dir, args.work_dir, args)
        samokoder.start()
        servers.append(samokoder)
        log(f"samokoder ready on {samokoder.base}")
        targets = {"samokoder": samokoder}
        memory = {"samokoder": {"idle_mib": tree_rss_kib(samokoder.pid) / 1024}}
        samokoder.seed(content)
        check_routes(samokoder, content)

        if Nginx.available():
            nginx = Nginx(args.work_dir)
            nginx.start()
            servers.append(nginx)
            targets["nginx"] = nginx
            memory["nginx"] = {"idle_mib": tree_rss_kib(nginx.pid) / 1024}
        elif args.smoke:
            results["missing"]["nginx"] = "nginx is not installed (scripts/install-deps.sh bench)"
        else:
            raise HarnessError("nginx is not installed (scripts/install-deps.sh bench)")

        missing = Reference.missing(args.reference_stack)
        if missing is None:
            reference = Reference(args.work_dir, args.reference_workers, args.reference_stack)
            reference.seed(content)
            reference.start()
            servers.append(reference)
            targets["reference"] = reference
            check_routes(reference, content)
            memory["reference"] = {"idle_mib": tree_rss_kib(reference.pid) / 1024}
        elif args.smoke:
            results["missing"]["reference"] = missing
        else:
            raise HarnessError(missing)

        log("measuring HTTP")
        results["http"], results["ratios"], peaks = measure_http(args, targets, results["failures"])
        for name, server in targets.items():
            memory[name]["peak_under_load_mib"] = summary([p / 1024 for p in peaks.get(name, [])])
            memory[name]["after_load_mib"] = tree_rss_kib(server.pid) / 1024
        results["memory"] = memory

        log("measuring the plugin call")
        results["plugin_call"] = measure_plugin_call(args, args.build_dir)
        if results["plugin_call"] is None:
            why = "plugin_call_bench is not built (configure with -DSAMOKODER_BUILD_BENCH=ON and libbenchmark-dev)"
            if not args.smoke:
                raise HarnessError(why)
            results["missing"]["plugin_call"] = why

        log("measuring hot reload under load")
        results["reload"] = measure_reload(args, args.build_dir, results["failures"])

        log("measuring the LLM gateway")
        results["llm"] = measure_llm(args, args.build_dir, results["failures"])
        if results["llm"] is None:
            why = "llm_bench is not built (it needs the tests' scripted model server: SAMOKODER_BUILD_TESTS=ON)"
            if not args.smoke:
                raise HarnessError(why)
            results["missing"]["llm"] = why

        log("measuring the runs engine")
        results["runs"] = measure_runs(args, args.build_dir, results["failures"])
        if results["runs"] is None:
            why = ("runs_bench is not built (it needs the tests' scripted model server and the runs suite's "
                   "fixture agents: SAMOKODER_BUILD_TESTS=ON with the runs suite)")
            if not args.smoke:
                raise HarnessError(why)
            results["missing"]["runs"] = why

        log("measuring the agent pipeline")
        results["pipeline"] = measure_pipeline(args, args.build_dir, results["failures"])
        if results["pipeline"] is None:
            why = ("pipeline_bench is not built (it needs the tests' scripted model server and every agent of the "
                   "default pipeline: SAMOKODER_BUILD_TESTS=ON)")
            if not args.smoke:
                raise HarnessError(why)
            results["missing"]["pipeline"] = why

        log("measuring previews")
        results["previews"] = measure_previews(args, args.build_dir, results["failures"], results["missing"])
        preview_profiles = results["previews"].pop("profiles", {})

        results["targets"] = evaluate_targets(results)
        if args.profile:
            results["profiles"] = dict(preview_profiles)
            for target in results["targets"]:
                if target["met"] is False and target.get("scenario"):
                    for server in (targets["samokoder"], targets[SCENARIOS[target["scenario"]]["peer"]]):
                        key = f"{target['scenario']} on {server.name}"
                        log(f"profiling {key}")
                        results["profiles"][key] = profile(server, target["scenario"], args)

        for server in reversed(servers):
            server.stop()
        servers = []
        log("measuring cold start and idle RSS")
        results["startup"] = measure_startup(args, samokoder)
        results["targets"] = evaluate_targets(results)
        if not args.smoke and args.analysis.exists():
            results["analysis"] = args.analysis.read_text()
    except HarnessError as e:
        error = str(e)
        results["failures"].insert(0, f"harness error: {error}")
    finally:
        for server in reversed(servers):
            server.stop()
    results["machine"]["loadavg_after"] = os.getloadavg()[0]
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    results.setdefault("targets", [])
    results.setdefault("http", [])
    results.setdefault("ratios", [])
    (args.out_dir / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out_dir / "latest.md").write_text(render_markdown(results) + "\n")
    log(f"wrote {args.out_dir / 'latest.md'} and latest.json in {results['elapsed_seconds']} s")
    if not args.smoke and not error and args.out_dir.resolve() == (BENCH_DIR / "results").resolve():
        update_docs(results)
    for t in results["targets"]:
        log(f"target {t['title']}: {t['measured']} ({ {True: 'met', False: 'missed', None: 'not measured'}[t['met']] })")
    if error or results["failures"]:
        for failure in results["failures"]:
            print(f"bench: {failure}", file=sys.stderr)
        print(f"bench: logs kept in {args.work_dir}", file=sys.stderr)
        return 1
    if not args.keep:
        # rm rather than shutil.rmtree: the POST runs leave a workspace directory per created project,
        # hundreds of thousands of them in a full run.
        subprocess.run(["rm", "-rf", "--", str(args.work_dir)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""{{project_name}}: one Python process serves the page (static/) and the JSON API (/api) on one port,
with nothing but the standard library."""

import json
import os
import re
import sys
import traceback
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "3000"))
STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 1024 * 1024


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def health(body, params):
    return 200, {"ok": True}


# The JSON API: (method, path) -> handler(body, params) returning (status, data). A path segment
# "{name}" matches anything and reaches the handler as params["name"].
ROUTES = {
    ("GET", "/api/health"): health,
}


def find_route(method, path):
    for (route_method, route_path), handler in ROUTES.items():
        if route_method != method:
            continue
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route_path)) + "$"
        match = re.match(pattern, path)
        if match:
            return handler, {name: unquote(value) for name, value in match.groupdict().items()}
    return None, None


class Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(STATIC_DIR), **kwargs)

    def do_GET(self):
        self.route("GET")

    def do_HEAD(self):
        self.route("HEAD")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_PATCH(self):
        self.route("PATCH")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        path = urlsplit(self.path).path
        if path != "/api" and not path.startswith("/api/"):
            if method == "GET":
                return super().do_GET()
            if method == "HEAD":
                return super().do_HEAD()
            return self.send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "Method not allowed"})
        try:
            handler, params = find_route("GET" if method == "HEAD" else method, path)
            if handler is None:
                raise HttpError(HTTPStatus.NOT_FOUND, "Not found")
            status, data = handler(self.read_json(), params)
            self.send_json(status, data)
        except HttpError as error:
            self.send_json(error.status, {"error": str(error)})
        except Exception:  # noqa: BLE001 - the client gets a 500, the log the traceback
            traceback.print_exc(file=sys.stderr)
            self.send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "Internal server error"})

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request body too large")
        if length == 0:
            return None
        try:
            return json.loads(self.rfile.read(length))
        except ValueError as error:
            raise HttpError(HTTPStatus.BAD_REQUEST, "Request body is not valid JSON") from error

    def send_json(self, status, data):
        body = json.dumps(data).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def main():
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    print(f"{{project_name}} listening on http://{HOST}:{PORT}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

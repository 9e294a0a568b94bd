"""Reference peer for the benchmarks: the measured routes in the predecessor's stack.

FastAPI on uvicorn, SQLite through the standard sqlite3 module, HS256 JWTs through PyJWT, all from
Debian 12's packages (python3-fastapi python3-uvicorn python3-jwt). Run with /usr/bin/python3, through
serve.py (uvicorn's --workers, with its TCP_NODELAY bug avoided).

Same semantics as the Samokoder routes, and as the predecessor's `get_current_user`: verify the
JWT (signature, expiry, type "access"), reject a revoked jti (a revoked_tokens table lookup), load
the user, then query and serialize; creating a project also creates its workspace directory. It is deliberately lean, which makes the ratio conservative:
no ORM (the predecessor used SQLAlchemy async), one connection per worker process, handlers on the
event loop (no thread pool hop), WAL with synchronous=NORMAL like storage.sqlite.

    BENCH_REFERENCE_DB=... BENCH_REFERENCE_SECRET=... BENCH_REFERENCE_WORKSPACES=... \\
      /usr/bin/python3 bench/reference/serve.py --workers 2 --port 8001   (uvicorn app:app, see serve.py)
    /usr/bin/python3 bench/reference/app.py seed DB SECRET FILE_PATH CONTENT_FILE PROJECTS EMAIL
        creates the schema if needed, one user, PROJECTS projects and (when PROJECTS > 0) the file
        in the first, and prints {"token", "project_id", "file_path"} as JSON
"""
import datetime
import hashlib
import json
import mimetypes
import os
import sqlite3
import sys
import uuid

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Extra, Field

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, disabled INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revoked_tokens (
  jti TEXT PRIMARY KEY, expires_at TEXT NOT NULL, revoked_at TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
  id TEXT PRIMARY KEY, owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL, description TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS projects_by_owner ON projects(owner_id, created_at, id);
CREATE TABLE IF NOT EXISTS files (
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE, path TEXT NOT NULL,
  version INTEGER NOT NULL, content BLOB NOT NULL, content_hash TEXT NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (project_id, path, version));
"""

PAGE_LIMIT = 50

_connection = None


def db():
    """The worker process's connection (handlers run on its one event loop thread)."""
    global _connection
    if _connection is None:
        _connection = sqlite3.connect(os.environ["BENCH_REFERENCE_DB"], isolation_level=None)
        _connection.execute("PRAGMA journal_mode=WAL")
        _connection.execute("PRAGMA synchronous=NORMAL")
        _connection.execute("PRAGMA foreign_keys=ON")
        _connection.execute("PRAGMA busy_timeout=5000")
    return _connection


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
SECRET = os.environ.get("BENCH_REFERENCE_SECRET", "")


def unauthorized():
    return HTTPException(status_code=401, detail="Could not validate credentials",
                         headers={"WWW-Authenticate": "Bearer"})


async def current_user(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if not header[:7].lower() == "bearer ":
        raise unauthorized()
    try:
        claims = jwt.decode(header[7:].strip(), SECRET, algorithms=["HS256"],
                            options={"require": ["exp", "jti", "sub"]})
    except jwt.InvalidTokenError:
        raise unauthorized()
    if claims.get("type") != "access":
        raise unauthorized()
    connection = db()
    if connection.execute("SELECT 1 FROM revoked_tokens WHERE jti = ?", (claims["jti"],)).fetchone():
        raise unauthorized()
    user = connection.execute("SELECT id, disabled FROM users WHERE id = ?", (claims["sub"],)).fetchone()
    if user is None or user[1]:
        raise unauthorized()
    return user[0]


def project_json(row):
    return {"id": row[0], "name": row[1], "description": row[2], "created_at": row[3], "updated_at": row[4]}


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=1000)

    class Config:
        extra = Extra.forbid


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}


@app.get("/api/v1/projects")
async def list_projects(user_id: str = Depends(current_user)):
    rows = db().execute(
        "SELECT id, name, description, created_at, updated_at FROM projects WHERE owner_id = ? "
        "ORDER BY created_at, id LIMIT ?", (user_id, PAGE_LIMIT + 1)).fetchall()
    items = [project_json(row) for row in rows[:PAGE_LIMIT]]
    next_cursor = rows[PAGE_LIMIT - 1][0] if len(rows) > PAGE_LIMIT else None
    return {"items": items, "next_cursor": next_cursor}


@app.post("/api/v1/projects", status_code=201)
async def create_project(body: ProjectCreate, user_id: str = Depends(current_user)):
    project_id = uuid.uuid4().hex
    created = now()
    db().execute("INSERT INTO projects (id, owner_id, name, description, created_at, updated_at) "
                 "VALUES (?, ?, ?, ?, ?, ?)", (project_id, user_id, body.name, body.description, created, created))
    # Like Samokoder (and the predecessor), every project gets its workspace directory.
    os.mkdir(os.path.join(os.environ["BENCH_REFERENCE_WORKSPACES"], project_id), 0o700)
    return JSONResponse(status_code=201, headers={"Location": f"/api/v1/projects/{project_id}"},
                        content=project_json((project_id, body.name, body.description, created, created)))


@app.get("/api/v1/projects/{project_id}/files/{path:path}")
async def get_file(project_id: str, path: str, user_id: str = Depends(current_user)):
    connection = db()
    if connection.execute("SELECT 1 FROM projects WHERE id = ? AND owner_id = ?",
                          (project_id, user_id)).fetchone() is None:
        raise HTTPException(status_code=404, detail="Project not found")
    row = connection.execute("SELECT content, content_hash, version FROM files WHERE project_id = ? AND path = ? "
                             "ORDER BY version DESC LIMIT 1", (project_id, path)).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail="File not found")
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return Response(content=bytes(row[0]), media_type=media_type,
                    headers={"ETag": f'"{row[1]}"', "X-File-Version": str(row[2])})


def seed(db_path, secret, file_path, content_file, project_count, email):
    os.environ["BENCH_REFERENCE_DB"] = db_path
    connection = db()
    connection.executescript(SCHEMA)
    user_id = uuid.uuid4().hex
    connection.execute("BEGIN")
    connection.execute("INSERT INTO users (id, email, created_at) VALUES (?, ?, ?)", (user_id, email, now()))
    project_ids = []
    for index in range(project_count):
        project_ids.append(uuid.uuid4().hex)
        created = now()
        connection.execute("INSERT INTO projects VALUES (?, ?, ?, ?, ?, ?)",
                           (project_ids[-1], user_id, f"project {index}", "seeded for the benchmark",
                            created, created))
    if project_ids:
        with open(content_file, "rb") as f:
            content = f.read()
        connection.execute("INSERT INTO files VALUES (?, ?, 1, ?, ?, ?)",
                           (project_ids[0], file_path, content, hashlib.sha256(content).hexdigest(), now()))
    # Some revoked tokens, as a logged-out population would leave behind.
    expires = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).isoformat()
    for _ in range(100):
        connection.execute("INSERT INTO revoked_tokens VALUES (?, ?, ?, 'logout')", (uuid.uuid4().hex, expires, now()))
    connection.execute("COMMIT")
    issued = datetime.datetime.now(datetime.timezone.utc)
    token = jwt.encode({"sub": user_id, "type": "access", "jti": uuid.uuid4().hex, "iat": issued,
                        "exp": issued + datetime.timedelta(days=1)}, secret, algorithm="HS256")
    print(json.dumps({"token": token, "project_id": project_ids[0] if project_ids else None, "file_path": file_path}))


if __name__ == "__main__":
    if len(sys.argv) != 8 or sys.argv[1] != "seed":
        sys.exit(__doc__)
    seed(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7])

"""{{project_name}}: one FastAPI process serves the page (static/) and the JSON API (/api) on one port."""

import os
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "3000"))
STATIC_DIR = Path(__file__).resolve().parent / "static"

app = FastAPI(title="{{project_name}}", description="{{project_description}}")


@app.get("/api/health")
def health() -> dict:
    return {"ok": True}


@app.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")


# Mounted last: the routes above win over files of the same path.
app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static")


if __name__ == "__main__":
    uvicorn.run(app, host=HOST, port=PORT)

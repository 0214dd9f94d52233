"""The web server of ``deltaprop playground``: Starlette routes and a WebSocket per browser tab.

Every tab creates its own :class:`~deltaprop.playground.session.Session` (``POST /api/sessions``)
and drives it over ``/api/sessions/{id}/ws``: ``play``, ``pause``, ``step`` and ``explain``
messages in (and ``drawn`` after the page draws a snapshot); ``snapshot``, ``explanation`` and
``error`` messages out. Training runs in a worker
thread, never in the event loop, so the page stays responsive. Everything the page sends is
checked on the server, and each refusal comes back as a message naming the field and the value;
before any route, :class:`~deltaprop.playground.guard.Guard` refuses requests that did not come
from the playground's own page.

HTTP routes:

- ``GET /``: the page; ``GET /static/...``: its script and style (shipped in the package; no
  CDN, the page works offline).
- ``GET /api/options``: the choices and defaults the page offers.
- ``POST /api/uploads?name=...&target=...``: a CSV file as the request body (at most
  :data:`MAX_UPLOAD` bytes) → ``{"upload", "columns", "rows"}``.
- ``POST /api/sessions``: settings as JSON → ``{"id", "snapshot"}``.
- ``GET /api/sessions/{id}``: the snapshot; ``GET .../explain?index=k``: one training row's back
  propagation (``dp.explain``'s JSON); ``GET .../model``: the model file; ``GET .../code``: the
  Python that rebuilds and trains the same network.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections import OrderedDict
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..data import catalog as datasets
from .guard import Guard, token_cookie
from .session import Session
from .settings import (
    DATA_SETS,
    Settings,
    SettingsError,
    csv_dataset,
    settings_schema,
    upload_table,
)

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 2_000_000
"""The largest CSV upload, in bytes."""
MAX_SESSIONS = 32
"""Sessions kept at once; the least recently used one is dropped beyond this."""
MAX_SESSIONS_BYTES = 512_000_000
"""The memory all sessions' data and networks may take together; the least recently used ones
are dropped beyond it."""
MAX_UPLOADS = 16
"""Uploads kept at once; the oldest one is dropped beyond this (its sessions keep their data)."""
MAX_SETTINGS = 64_000
"""The largest settings document, in bytes."""
PLAY_PAUSE_S = 0.02
"""The pause between two epochs while playing, so that the page can draw each one."""
MAX_UNDRAWN = 2
"""Snapshots sent while playing before the page says it drew one (``drawn``): training runs at
most this far ahead of the drawing, so Pause stops what the page shows at once."""
DRAW_WAIT_S = 1.0
"""How long playing waits for a ``drawn`` before it goes on anyway."""


async def _body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None once it passes ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Playground:
    """The server's state: uploaded files and the sessions of open tabs."""

    def __init__(
        self, data: str | None = None, target: str | None = None, token: str | None = None
    ) -> None:
        self.token = token
        self.uploads: dict[str, str] = {}
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self._ids = itertools.count(1)
        self.default_data = "spirals"
        self.default_target = target
        if data is not None:
            self.default_data = self._preload(data, target)

    def _preload(self, data: str, target: str | None) -> str:
        """``deltaprop playground --data``: a built-in name, or a CSV file read as an upload."""
        if not datasets.is_file_name(data):
            name = data.strip().lower().replace("_", "-")
            if name not in DATA_SETS:
                raise ValueError(
                    f"unknown data set {data!r}; known: {', '.join(DATA_SETS)}, or a .csv file"
                )
            return name
        text = Path(data).read_text(encoding="utf-8")
        upload = f"upload: {Path(data).name}"
        csv_dataset(text, target, Path(data).name)
        self.uploads[upload] = text
        return upload

    def session(self, key: str) -> Session | None:
        found = self.sessions.get(key)
        if found is not None:
            self.sessions.move_to_end(key)
        return found

    # --- HTTP ---------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        response = FileResponse(STATIC / "index.html")
        if self.token is not None:  # the Guard let it through: the token was shown
            response.headers["set-cookie"] = token_cookie(self.token)
        return response

    async def options(self, request: Request) -> Response:
        schema = settings_schema()
        schema["data"] = [*schema["data"], *self.uploads]
        schema["defaults"]["data"] = self.default_data
        schema["defaults"]["target"] = self.default_target
        return JSONResponse(schema)

    async def upload(self, request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD:
            return _error(f"upload: {int(declared):,} bytes; at most {MAX_UPLOAD:,}", 413)
        body = await _body(request, MAX_UPLOAD)
        if body is None:
            return _error(f"upload: more than {MAX_UPLOAD:,} bytes", 413)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _error("upload: the file is not UTF-8 text")
        name = request.query_params.get("name", "data.csv")[:80]
        target = request.query_params.get("target") or None
        try:
            if target is None:  # the page asks for the target once it knows the columns
                table = await run_in_threadpool(upload_table, text, name)
                columns, rows = list(table.names), table.n_rows
            else:
                dataset = await run_in_threadpool(csv_dataset, text, target, name)
                columns, rows = list(dataset.features.names), dataset.n_rows
        except (ValueError, KeyError) as error:
            return _error(f"upload: {error}".replace("--target", "the target field"))
        upload = f"upload {next(self._ids)}: {name}"
        self.uploads[upload] = text
        while len(self.uploads) > MAX_UPLOADS:
            del self.uploads[next(iter(self.uploads))]  # the oldest
        return JSONResponse({"upload": upload, "columns": columns, "rows": rows, "target": target})

    async def create(self, request: Request) -> Response:
        body = await _body(request, MAX_SETTINGS)
        if body is None:
            return _error(f"settings: more than {MAX_SETTINGS:,} bytes", 413)
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return _error("settings: the request body is not JSON")
        try:
            settings = Settings.from_json(document, self.uploads)
            session = await run_in_threadpool(Session, settings, self.uploads)
        except (SettingsError, TypeError) as error:
            return _error(str(error))
        key = os.urandom(8).hex()
        self.sessions[key] = session
        while len(self.sessions) > MAX_SESSIONS or (
            len(self.sessions) > 1
            and sum(kept.nbytes for kept in self.sessions.values()) > MAX_SESSIONS_BYTES
        ):
            self.sessions.popitem(last=False)  # the least recently used
        return JSONResponse({"id": key, "snapshot": session.snapshot()})

    def _found(self, request: Request) -> Session | Response:
        session = self.session(request.path_params["key"])
        if session is None:
            return _error(f"no session {request.path_params['key']!r} (it may have expired)", 404)
        return session

    async def show(self, request: Request) -> Response:
        session = self._found(request)
        return session if isinstance(session, Response) else JSONResponse(session.snapshot())

    async def explain(self, request: Request) -> Response:
        session = self._found(request)
        if isinstance(session, Response):
            return session
        raw = request.query_params.get("index", "0")
        try:
            return JSONResponse(await run_in_threadpool(session.explain, int(raw)))
        except ValueError:
            return _error(f"index: a training row number, got {raw!r}")

    async def model(self, request: Request) -> Response:
        session = self._found(request)
        if isinstance(session, Response):
            return session
        data = await run_in_threadpool(session.model_file)
        headers = {"Content-Disposition": 'attachment; filename="playground.safetensors"'}
        return Response(data, media_type="application/octet-stream", headers=headers)

    async def code(self, request: Request) -> Response:
        session = self._found(request)
        if isinstance(session, Response):
            return session
        headers = {"Content-Disposition": 'attachment; filename="playground.py"'}
        return PlainTextResponse(session.code(), media_type="text/x-python", headers=headers)

    # --- the WebSocket ------------------------------------------------------------------------

    async def socket(self, websocket: WebSocket) -> None:
        await websocket.accept()
        session = self.session(websocket.path_params["key"])
        if session is None:
            await websocket.send_json({"type": "error", "message": "no such session"})
            await websocket.close(code=1008)
            return
        playing: asyncio.Task[None] | None = None
        undrawn = 0  # snapshots sent that the page has not said it drew
        drawn = asyncio.Event()

        async def play() -> None:
            nonlocal undrawn
            while not session.diverged:
                while undrawn >= MAX_UNDRAWN:  # the page draws slower than epochs train
                    drawn.clear()
                    try:
                        await asyncio.wait_for(drawn.wait(), DRAW_WAIT_S)
                    except TimeoutError:
                        undrawn = 0  # a client that never says it drew: go on at its pace
                await run_in_threadpool(session.advance, 1)
                await websocket.send_json(session.snapshot())
                undrawn += 1
                await asyncio.sleep(PLAY_PAUSE_S)
            await websocket.send_json({"type": "paused", "reason": "the loss is not finite"})

        try:
            while True:
                received = await websocket.receive()
                if received["type"] == "websocket.disconnect":
                    break
                text = received.get("text")
                if text is None:  # a binary frame
                    await websocket.send_json(
                        {"type": "error", "message": "messages are JSON text, not binary frames"}
                    )
                    continue
                try:
                    message = json.loads(text)
                except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse
                    await websocket.send_json({"type": "error", "message": "messages are JSON"})
                    continue
                kind = message.get("type") if isinstance(message, dict) else None
                if kind == "play":
                    if playing is None or playing.done():
                        playing = asyncio.create_task(play())
                elif kind == "drawn":
                    undrawn = max(undrawn - 1, 0)
                    drawn.set()
                elif kind == "pause":
                    if playing is not None:
                        playing.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await playing
                        playing = None
                        # the epoch a cancelled task left running ends first (the session's
                        # lock): the page then shows exactly the state it paused in
                        await websocket.send_json(await run_in_threadpool(session.snapshot))
                    await websocket.send_json({"type": "paused", "reason": "asked"})
                elif kind == "step":
                    if playing is None or playing.done():
                        await run_in_threadpool(session.advance, 1)
                        await websocket.send_json(session.snapshot())
                elif kind == "explain":
                    try:
                        index = message.get("index")
                        await websocket.send_json(await run_in_threadpool(session.explain, index))
                    except SettingsError as error:
                        await websocket.send_json({"type": "error", "message": str(error)})
                else:
                    known = "play, pause, step, explain, drawn"
                    shown = str(message)[:80]
                    text = f"unknown message {shown}; known types: {known}"
                    await websocket.send_json({"type": "error", "message": text})
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if playing is not None:
                playing.cancel()


def create_app(
    data: str | None = None,
    target: str | None = None,
    *,
    port: int | None = None,
    token: str | None = None,
) -> Starlette:
    """The playground's web application (``data``, ``target``: what the page starts with),
    behind its :class:`~deltaprop.playground.guard.Guard`: ``port`` the one it listens on
    (None: any), ``token`` the secret callers must show (None: only this machine's Host
    names are answered)."""
    state = Playground(data, target, token)
    routes = [
        Route("/", state.page),
        Route("/api/options", state.options),
        Route("/api/uploads", state.upload, methods=["POST"]),
        Route("/api/sessions", state.create, methods=["POST"]),
        Route("/api/sessions/{key}", state.show),
        Route("/api/sessions/{key}/explain", state.explain),
        Route("/api/sessions/{key}/model", state.model),
        Route("/api/sessions/{key}/code", state.code),
        WebSocketRoute("/api/sessions/{key}/ws", state.socket),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(Guard, port=port, token=token)])
    app.state.playground = state
    return app

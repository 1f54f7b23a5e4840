"""The embedding model kept loaded by ``watcher serve``, for ``watcher search --similar`` on the same machine.

Loading the model costs seconds (torch, the weights, the trained adapter merged in); embedding one query costs
milliseconds. ``watcher serve`` loads it once, in a thread beside the web server, and answers on a Unix socket
(``socket_path(archive)``: in the temporary folder, named after the archive's path, readable by its user only);
``watcher search --similar`` asks there first (``connect``) and loads the model itself only when nobody answers.

Protocol: one JSON object per line each way. ``{"texts": [...], "kind": "query"}`` gets ``{"name", "version",
"dim", "vectors"}`` (base64 of float32 rows, L2-normalised: exactly what the loaded embedder returned) or
``{"error": "..."}``; ``{"texts": []}`` asks who is there. A request made while the model loads waits for it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import socketserver
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from classifiers.engine.e5 import Embedder

CONNECT_TIMEOUT = 1.0  # a socket nobody answers on is given up quickly: the CLI then loads the model itself
ANSWER_TIMEOUT = 300.0  # the first request may wait for the model to load


def socket_path(database: str | Path) -> Path:
    """Where the model of the archive ``database`` is served (one per archive; a short path, as Unix sockets
    need)."""
    digest = hashlib.sha256(str(Path(database).resolve()).encode("utf-8")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"watcher-model-{digest}.sock"


class ModelService:
    """Serve ``load()``'s embedder on ``path`` until ``close``. ``start`` returns at once: the model loads in a
    thread; ``error`` says why it could not (the requests then get that error, the CLI loads the model itself)."""

    def __init__(self, path: Path, load: Callable[[], Embedder]):
        self.path, self._load = path, load
        self.embedder: Embedder | None = None
        self.error: str | None = None
        self.load_seconds: float | None = None
        self._loaded = threading.Event()
        self._lock = threading.Lock()  # one embedding at a time: the model uses every core already
        self._server: socketserver.ThreadingUnixStreamServer | None = None

    def start(self) -> bool:
        """Listen on ``path`` and start loading; False (and nothing started) if another process serves there."""
        if _answers(self.path):
            return False
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a process that did not stop cleanly
        service = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    self.wfile.write(json.dumps(service.answer(line)).encode("utf-8") + b"\n")

        old = os.umask(0o177)  # the socket is the user's alone
        try:
            self._server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        finally:
            os.umask(old)
        self._server.daemon_threads = True
        threading.Thread(target=self._load_model, name="watcher-model-load", daemon=True).start()
        threading.Thread(target=self._server.serve_forever, name="watcher-model-socket", daemon=True).start()
        return True

    def _load_model(self) -> None:
        import time

        start = time.perf_counter()
        try:
            self.embedder = self._load()
            self.load_seconds = time.perf_counter() - start
        except Exception as exc:  # reported to every request; `watcher search --similar` loads it itself
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._loaded.set()

    def answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            texts = [str(t) for t in request.get("texts") or []]
            kind: Literal["query", "passage"] = "passage" if request.get("kind") == "passage" else "query"
        except (ValueError, AttributeError, TypeError):
            return {"error": "bad request"}
        if not self._loaded.wait(ANSWER_TIMEOUT) or self.embedder is None:
            return {"error": self.error or "the model is still loading"}
        embedder = self.embedder
        try:
            with self._lock:
                vectors = embedder.embed(texts, kind=kind) if texts else np.zeros((0, embedder.dim), np.float32)
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        data = np.ascontiguousarray(vectors, dtype=np.float32).tobytes()
        return {"name": embedder.name, "version": embedder.version, "dim": embedder.dim,
                "vectors": base64.b64encode(data).decode("ascii")}

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._server = None


class RemoteEmbedder:
    """The ``Embedder`` of a ``ModelService``: the same vectors, computed in the process that holds the model."""

    def __init__(self, sock: socket.socket):
        self._sock, self._file = sock, sock.makefile("rwb")
        hello = self._ask([], "query")
        self.name, self.version, self.dim = str(hello["name"]), str(hello["version"]), int(hello["dim"])

    def _ask(self, texts: Sequence[str], kind: str) -> dict[str, Any]:
        self._file.write(json.dumps({"texts": list(texts), "kind": kind}).encode("utf-8") + b"\n")
        self._file.flush()
        line = self._file.readline()
        if not line:
            raise OSError("the model service closed the connection")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise OSError(f"the model service failed: {answer['error']}")
        return answer

    def embed(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 32) -> np.ndarray:
        answer = self._ask(texts, kind)
        return np.frombuffer(base64.b64decode(answer["vectors"]), dtype=np.float32).reshape(len(texts), self.dim)

    def close(self) -> None:
        self._file.close()
        self._sock.close()


def connect(database: str | Path) -> RemoteEmbedder | None:
    """The model ``watcher serve`` keeps for ``database``, or None when no process serves it (or it failed)."""
    path = socket_path(database)
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(str(path))
        sock.settimeout(ANSWER_TIMEOUT)
        return RemoteEmbedder(sock)
    except (OSError, ValueError, KeyError):
        sock.close()
        return None


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True

"""``watcher serve`` keeps the embedding model loaded and ``watcher search --similar`` asks it on a local socket
(``watcher.search.model_service``): the command prints the same nearest items as with a model of its own, without
loading one; with nobody serving, or a server whose model failed, the command loads the model itself."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from archive_support import REPO, LiveServer, copy_archive, write_config

from store import Store
from watcher.search.model_service import ModelService, connect, socket_path
from watcher.search.similar import embed_missing, search_similar


class WordsEmbedder:
    """A deterministic stand-in for the model (each word a fixed random direction): the command cannot tell."""

    name, version, dim = "intfloat/multilingual-e5-small", "words-1", 384

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
                out[row] += np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out[row] /= np.linalg.norm(out[row]) or 1.0
        return out


@pytest.fixture
def archive(tmp_path: Path, archive_built: Path) -> tuple[Path, Path]:
    database = copy_archive(archive_built, tmp_path / "db")
    store = Store(database)
    embed_missing(store, WordsEmbedder())
    store.close()
    return database, write_config(tmp_path, database)


def _search(config: Path, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watcher", "--config", str(config), "search", "--similar", text,
                           "--limit", "3"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=600, check=False)


def test_the_command_uses_the_model_the_server_keeps(archive: tuple[Path, Path]) -> None:
    database, config = archive
    embedder = WordsEmbedder()
    service = ModelService(socket_path(database), lambda: embedder)
    assert service.start()
    try:
        done = _search(config, "sanction cookies consentement")
    finally:
        service.close()
    assert done.returncode == 0, done.stderr
    assert "model loaded" not in done.stderr, done.stderr
    assert embedder.calls == 1  # the query, embedded by the server
    store = Store(database)
    expected = search_similar(store, WordsEmbedder(), "sanction cookies consentement", limit=3)
    store.close()
    lines = done.stdout.splitlines()
    assert [line.split("\t")[1] for line in lines] == [hit.item["id"] for hit in expected]
    assert [float(line.split("\t")[0]) for line in lines] == pytest.approx([h.similarity for h in expected], abs=1e-3)
    assert not socket_path(database).exists()  # removed when the server stops


def test_one_server_per_archive_and_a_failed_model_is_not_used(archive: tuple[Path, Path]) -> None:
    database, _ = archive
    first = ModelService(socket_path(database), WordsEmbedder)
    assert first.start()
    try:
        assert not ModelService(socket_path(database), WordsEmbedder).start()
        remote = connect(database)
        assert remote is not None and remote.dim == 384
        vectors = remote.embed(["données de santé", "cookies"])
        assert vectors.shape == (2, 384) and np.allclose(vectors, WordsEmbedder().embed(["données de santé",
                                                                                          "cookies"]))
        remote.close()
    finally:
        first.close()

    def fail() -> WordsEmbedder:
        raise RuntimeError("no weights")

    broken = ModelService(socket_path(database), fail)
    assert broken.start()
    try:
        assert connect(database) is None  # the command then loads the model itself
    finally:
        broken.close()
    assert connect(database) is None  # nobody serves it


@pytest.mark.model
@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_keeps_the_model_for_the_command_and_removes_its_socket_when_stopped(
        tmp_path: Path, archive_built: Path, stop_with: signal.Signals) -> None:
    database = copy_archive(archive_built, tmp_path / "db")
    config = write_config(tmp_path, database)
    server = LiveServer(config, env={}, model=True)
    try:
        assert socket_path(database).exists()  # listening before the web server says so
        remote = connect(database)  # answers once the model is loaded
        assert remote is not None and remote.name.startswith("intfloat/multilingual-e5-small")
        remote.close()
        done = _search(config, "retraitement des dispositifs médicaux à usage unique")
        assert done.returncode == 0 and "model loaded" not in done.stderr, done.stderr
    finally:
        server.stop(stop_with)
    assert not socket_path(database).exists()

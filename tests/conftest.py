"""Shared fixtures. Keep them generic: other test modules reuse them (append yours below, with a docstring).

- ``fixtures_dir``: the folder of recorded real files (``tests/fixtures``).
- ``fake_clock``: a clock that only moves when its ``sleep`` is called; ``.sleeps`` lists the waits asked for.
- ``replay_server``: a started, empty ``ReplayServer`` on 127.0.0.1 (``.add(url, ...)`` scripted answers).
- ``demo_server``: a started ``ReplayServer`` serving the bundled demo recording (``watcher/replay_data``).
- ``http_client``: a factory ``http_client(**settings) -> HttpClient`` wired to ``replay_server`` and
  ``fake_clock`` (no real sleeping); pass ``server=`` to use another server, ``url_map=`` to send elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from watcher.config.settings import Settings
from watcher.http import HttpClient, build_client
from watcher.replay import DEMO_RECORDING, ReplayServer

FIXTURES = Path(__file__).parent / "fixtures"

# test defaults: short timeout, no pacing, two retries, a recognisable contact
TEST_SETTINGS = Settings(timeout=2.0, host_delay=0.0, retries=2, max_retry_after=60.0,
                         contact="tests@example.org")


class FakeClock:
    """``clock()`` returns the fake time; ``sleep(s)`` records the wait and moves the time forward."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def replay_server() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@pytest.fixture
def demo_server() -> Iterator[ReplayServer]:
    with ReplayServer(DEMO_RECORDING) as server:
        yield server


@pytest.fixture
def http_client(replay_server: ReplayServer, fake_clock: FakeClock) -> Iterator[Callable[..., HttpClient]]:
    clients: list[HttpClient] = []

    def make(*, server: ReplayServer | None = None, url_map: Callable[[str], str] | None = None,
             **settings: Any) -> HttpClient:
        client = build_client(replace(TEST_SETTINGS, **settings),
                              url_map=url_map or (server or replay_server).url_map,
                              sleep=fake_clock.sleep, clock=fake_clock)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def archive_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``archive_built``: a real archive (the demo recordings fetched, stored and keyword-classified), built once
    per session; never write to it: copy it (``archive_support.copy_archive``)."""
    from archive_support import build_archive

    return build_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The converted e5-small: the user's cache if it is there, else converted once for the session."""
    from classifiers.engine.convert import ensure_converted, read_marker
    from classifiers.engine.e5 import default_model_dir

    default = default_model_dir()
    if read_marker(default) is not None:
        return default
    target = tmp_path_factory.mktemp("e5") / "multilingual-e5-small-q4"
    ensure_converted(target)
    return target

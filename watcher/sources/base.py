"""What every kind of source is: a small class that fetches (I/O) and parses (pure).

A kind declares the keys it accepts in a ``[[source]]`` table (``required`` / ``optional``, with help). ``parse``
is a pure function of bytes, tested on recorded real files; ``collect`` does the I/O through the one shared
``HttpClient`` and returns a ``Collected`` (items + the state to remember).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from watcher.config.sources import SourceConfig
from watcher.models import Collected, Item, SourceState

if TYPE_CHECKING:
    from watcher.http import HttpClient, Response


def unchanged(state: SourceState) -> Collected:
    """What a run gives when the server answers 304: no item, the state as it was, one request."""
    return Collected([], etag=state.etag, last_modified=state.last_modified, cursor=state.cursor,
                     not_modified=True, requests=1)


class SourceKind(ABC):
    kind: ClassVar[str]
    required: ClassVar[dict[str, str]] = {}
    optional: ClassVar[dict[str, str]] = {}
    expects: ClassVar[str] = "feed"  # what the body must look like: feed | html | xml | listing | tar

    def __init__(self, config: SourceConfig):
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    def parse(self, content: bytes, *, url: str) -> list[Item]:
        """Turn one response body into items. Pure: no network, no store, no clock."""

    def conditional_get(self, http: HttpClient, state: SourceState, url: str = "", *,
                        expect: str = "") -> Response:
        """GET ``url`` (default ``config.url``) with the ETag / Last-Modified ``state`` remembers, expecting
        ``expect`` (default the kind's ``expects``); ``Response.not_modified`` on a 304."""
        return http.get(url or self.config.url, source=self.name, etag=state.etag,
                        last_modified=state.last_modified, expect=expect or self.expects)

    def collect(self, http: HttpClient, state: SourceState) -> Collected:
        """Default: one conditional GET of ``config.url``; 304 means nothing to do."""
        response = self.conditional_get(http, state)
        if response.not_modified:
            return unchanged(state)
        items = self.parse(response.content, url=response.url)
        return Collected(items, etag=response.etag, last_modified=response.last_modified, cursor=state.cursor,
                         requests=1)

"""Test doubles shared by the DILA kinds' tests: an in-memory tarball and an HttpClient stand-in that answers
from a dict with the real ``watcher.http.Response`` (the end-to-end tests use the real client and server)."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field

from watcher.http import Response


def targz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A small .tar.gz built in memory (regular files, plus symlinks name -> target)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@dataclass
class FakeHttp:
    """Answers ``get`` from ``pages`` ({url: bytes, or an exception to raise}); the listing (``folder``) has an
    ETag and answers 304 when ``listing_not_modified``."""

    pages: dict[str, bytes | Exception]
    folder: str = ""
    listing_not_modified: bool = False
    calls: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    def get(self, url: str, *, source: str, etag: str | None = None, last_modified: str | None = None,
            expect: str | None = None) -> Response:
        self.calls.append((url, expect, etag))
        if url == self.folder and self.listing_not_modified:
            return Response(url, 304, {}, b"", not_modified=True, etag=etag)
        page = self.pages[url]
        if isinstance(page, Exception):
            raise page
        return Response(url, 200, {}, page, etag='"listing-1"' if url == self.folder else None)

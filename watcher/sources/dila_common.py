"""What the DILA open-data kinds (``dila-jorf``, ``dila-cnil``) share: the folder listing, the archive
cursor, safe untar, safe XML and the text of the HTML fragments DILA embeds in its XML.

DILA publishes, in one plain Apache folder per fund, one ``<FUND>_YYYYMMDD-HHMMSS.tar.gz`` delta per
generation; names sort chronologically. A run lists the folder, takes the archives newer than the cursor (on
a first run only the newest ``first_run_archives``, never the historical ``Freemium_*`` stock), fetches and
reads them in order.

Cursor semantics (the pipeline persists ``Collected.cursor``): the name of the last archive read without
error. An archive that cannot be fetched or read stops the run there: if it is the first archive of the run,
its ``FetchError`` / ``ParseError`` (naming the archive) is raised and nothing changes; otherwise the items of
the archives read before it are returned, with a warning naming it, and the cursor stays just before it, so
that the next run tries it again (and fails loudly if it is still broken). Inside a readable archive, one
malformed XML file is skipped with a warning. A run that did not reach the end of the listing returns no
ETag / Last-Modified, so that the next run reads the listing again instead of getting a 304.
"""

from __future__ import annotations

import io
import re
import tarfile
import zlib
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, ClassVar, TypeVar
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XmlSyntaxError

from defusedxml import DefusedXmlException

import watcher.util.xmlsafe as SafeET
from watcher.config.sources import SourceConfig
from watcher.models import Collected, Item, SourceState
from watcher.sources.base import SourceKind, unchanged
from watcher.util.errors import ConfigError, FetchError, ParseError
from watcher.util.text import clean_text, teaser

if TYPE_CHECKING:
    from watcher.http import HttpClient

T = TypeVar("T")
V = TypeVar("V")
Member = tuple[str, bytes]  # (path in the archive, bytes)
GZIP_MAGIC = b"\x1f\x8b"
LISTING_ENCODING = "iso-8859-1"  # DILA's Apache index pages
MAX_MEMBER_BYTES = 16 * 1024 * 1024  # one XML file; the largest JORF text seen is ~0.6 MB
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024  # one delta's members, uncompressed; deltas are at most ~18 MB gzipped
DEFAULT_FIRST_RUN_ARCHIVES = 2
DEFAULT_MAX_ARCHIVES_PER_RUN = 20
DUMP_OPTIONS: dict[str, str] = {
    "first_run_archives": "on a first run (no cursor yet), how many of the newest archives to read "
                          f"(default {DEFAULT_FIRST_RUN_ARCHIVES}); the historical Freemium stock is "
                          "never read",
    "max_archives_per_run": "at most this many archives per run, oldest first; the rest waits for the next "
                            f"run (default {DEFAULT_MAX_ARCHIVES_PER_RUN})",
}


# --- listing and cursor -------------------------------------------------------------------------------------

def parse_listing(html: bytes, pattern: re.Pattern[str]) -> list[str]:
    """Archive names matching ``pattern`` in an Apache index page (ISO-8859-1), sorted, once each."""
    return sorted(set(pattern.findall(html.decode(LISTING_ENCODING))))


def select_archives(names: list[str], cursor: str | None, *, first_run: int, limit: int) -> list[str]:
    """The archives to read this run, oldest first: those after ``cursor``; without a cursor, the newest
    ``first_run``; at most ``limit``."""
    ordered = sorted(names)
    pending = ordered[-first_run:] if cursor is None else [n for n in ordered if n > cursor]
    return pending[:limit]


# --- archives -----------------------------------------------------------------------------------------------

def _check_member(member: tarfile.TarInfo, *, source: str, archive: str, max_bytes: int) -> None:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise ParseError(source, f"archive {archive}: refused unsafe member path {member.name!r}")
    if member.size > max_bytes:
        raise ParseError(source, f"archive {archive}: member {member.name} is {member.size} bytes "
                                 f"(cap {max_bytes})")


def iter_members(data: bytes, *, source: str, archive: str, max_member_bytes: int = MAX_MEMBER_BYTES,
                 max_total_bytes: int = MAX_ARCHIVE_BYTES, wanted: re.Pattern[str] | None = None,
                 skipped: list[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of each regular file of a .tar.gz (whose path matches ``wanted``, when given), streamed: one
    member's bytes at a time, read only when it is yielded (a member not wanted is passed over, never read into
    memory). Links, devices and folders are skipped; absolute or '..' paths and a corrupt or truncated archive
    raise ``ParseError``; an oversized member too, or, with a ``skipped`` list, is noted there and passed over."""
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as tar:
            for member in tar:
                if not member.isreg():
                    continue
                try:
                    _check_member(member, source=source, archive=archive, max_bytes=max_member_bytes)
                except ParseError as exc:
                    if skipped is None or "unsafe" in exc.reason:
                        raise
                    if wanted is None or wanted.search(member.name):
                        skipped.append(f"{exc.reason}; skipped")
                    continue
                if wanted is not None and not wanted.search(member.name):
                    continue
                total += member.size
                if total > max_total_bytes:
                    raise ParseError(source, f"archive {archive}: over {max_total_bytes} bytes uncompressed")
                handle = tar.extractfile(member)
                yield member.name, handle.read() if handle else b""
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ParseError(source, f"archive {archive} is corrupt or truncated: {exc}") from exc


@dataclass
class ArchiveContent:
    """What one archive gave: its items, and the members skipped with why."""

    archive: str
    items: list[Item] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def read_each(self, members: Iterable[Member], read: Callable[[bytes], T]) -> Iterator[T]:
        """``read`` of each member's bytes; a member it refuses (``ParseError``) is skipped with a warning."""
        for path, data in members:
            try:
                value = read(data)
            except ParseError as exc:
                self.warnings.append(f"archive {self.archive}: {path} skipped: {exc.reason}")
                continue
            yield value

    def add_texts(self, members: Iterable[Member], read: Callable[[bytes], Item], *, file: str) -> None:
        """One item per text member (``read_each``, one member in memory at a time); an archive without any
        ``file`` member is a warning."""
        before = len(self.items) + len(self.warnings)
        self.items.extend(self.read_each(members, read))
        if len(self.items) + len(self.warnings) == before:
            self.warnings.append(f"archive {self.archive} holds no {file} file")

    def strict(self, source: str) -> list[Item]:
        """The items, or ``ParseError`` if anything was skipped (for ``parse`` on one archive)."""
        if self.warnings:
            raise ParseError(source, self.warnings[0])
        return self.items


# --- XML ----------------------------------------------------------------------------------------------------

def parse_xml(data: bytes, *, source: str, what: str) -> Element:
    """Parse untrusted XML: no entity expansion, no external entity or DTD fetched."""
    try:
        root: Element = SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise ParseError(source, f"{what}: refused unsafe XML ({type(exc).__name__})") from exc
    except XmlSyntaxError as exc:
        raise ParseError(source, f"{what}: not well-formed XML ({exc})") from exc
    return root


def text_at(root: Element, path: str) -> str:
    """Cleaned text of the first element at ``path`` ('' if absent or empty)."""
    return clean_text(root.findtext(path) or "")


def expect_root(root: Element, tag: str, *, source: str, what: str) -> Element:
    """``root`` if it is a ``<tag>``, else ``ParseError`` ("expected {what} (<tag>), got <...>")."""
    if root.tag != tag:
        raise ParseError(source, f"expected {what} (<{tag}>), got <{root.tag}>")
    return root


def expect_id(value: str, prefix: str, *, source: str, what: str) -> str:
    """``value`` if it is an id starting with ``prefix`` (``JORFTEXT``...), else ``ParseError``."""
    if not value.startswith(prefix):
        raise ParseError(source, f"{what} without a {prefix} id ({value!r})")
    return value


def present(fields: Mapping[str, V]) -> dict[str, V]:
    """The fields that have a value (empty strings, False and the like left out)."""
    return {key: value for key, value in fields.items() if value}


_PREAMBLE = re.compile(r"^(?:vu |après avoir |sur (?:le )?rapport |la commission nationale de l.inf)", re.I)


def excerpt(text: str, limit: int = 300) -> str:
    """A short summary: the first paragraph of substance (not a 'Vu ...' visa or the CNIL's opening formula),
    cut at a word before ``limit`` characters, with '…'."""
    paragraphs = [p.replace("\n", " ") for p in text.strip().split("\n\n") if p.strip()]
    if not paragraphs:
        return ""
    first = next((p for p in paragraphs if len(p) >= 60 and not _PREAMBLE.match(p)), paragraphs[0])
    return teaser(first, limit)


# --- the shared kind ----------------------------------------------------------------------------------------

def _positive_int(config: SourceConfig, key: str, default: int) -> int:
    value = config.option(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"must be a positive integer, not {value!r}", table=f"source {config.name!r}",
                          key=key)
    return value


class DilaDumpSource(SourceKind):
    """A DILA open-data folder of ``<prefix>_YYYYMMDD-HHMMSS.tar.gz`` deltas read with a cursor. A kind says how
    to read one archive (``read_archive``) and one text file (``read_text``)."""

    expects: ClassVar[str] = "tar"
    optional: ClassVar[dict[str, str]] = DUMP_OPTIONS
    archive_pattern: ClassVar[re.Pattern[str]]

    def __init__(self, config: SourceConfig):
        super().__init__(config)
        self.first_run_archives = _positive_int(config, "first_run_archives", DEFAULT_FIRST_RUN_ARCHIVES)
        self.max_archives_per_run = _positive_int(config, "max_archives_per_run",
                                                  DEFAULT_MAX_ARCHIVES_PER_RUN)

    @abstractmethod
    def read_archive(self, data: bytes, *, archive: str) -> ArchiveContent:
        """Items of one archive (pure); ``ParseError`` naming the archive if it cannot be read."""

    @abstractmethod
    def read_text(self, content: bytes, *, url: str) -> Item:
        """One text file of the fund as an Item (pure)."""

    def parse(self, content: bytes, *, url: str) -> list[Item]:
        """A delta (.tar.gz, told by its gzip magic; strict: any member skipped raises ``ParseError``) or one
        text file."""
        if content[:2] == GZIP_MAGIC:
            return self.read_archive(content, archive=url.rsplit("/", 1)[-1] or "archive").strict(self.name)
        return [self.read_text(content, url=url)]

    def members(self, data: bytes, content: ArchiveContent, pattern: re.Pattern[str]) -> Iterator[Member]:
        """The members of one archive whose path matches ``pattern``, one at a time (a pass over the archive per
        call: the compressed delta is in memory, its members never all at once); an oversized one is a warning of
        ``content``."""
        return iter_members(data, source=self.name, archive=content.archive, wanted=pattern,
                            skipped=content.warnings)

    def archive_url(self, name: str) -> str:
        return self.config.url.rstrip("/") + "/" + name

    def collect(self, http: HttpClient, state: SourceState) -> Collected:
        listing = self.conditional_get(http, state, expect="listing")
        if listing.not_modified:
            return unchanged(state)
        names = parse_listing(listing.content, self.archive_pattern)
        if not names:
            raise ParseError(self.name, f"no {self.archive_pattern.pattern} archive in the listing",
                             url=listing.url)
        pending = select_archives(names, state.cursor, first_run=self.first_run_archives, limit=len(names))
        run = _Run(cursor=state.cursor)
        for name in pending[: self.max_archives_per_run]:
            if not self._read_one(http, name, run):
                break
        complete = run.read == len(pending)  # if not, the next run must read the listing again, not get a 304
        return Collected(list(run.items.values()), etag=listing.etag if complete else None,
                         last_modified=listing.last_modified if complete else None, cursor=run.cursor,
                         requests=1 + run.requests, warnings=tuple(run.warnings))

    def _read_one(self, http: HttpClient, name: str, run: _Run) -> bool:
        """Fetch and read one archive into ``run``; False (and a warning) if it failed after earlier ones."""
        url = self.archive_url(name)
        run.requests += 1
        try:
            response = http.get(url, source=self.name, expect="tar")
            content = self.read_archive(response.content, archive=name)
        except (FetchError, ParseError) as exc:
            if run.read == 0:
                raise
            run.warnings.append(f"stopped at archive {name} (will be retried next run): {exc.reason}")
            return False
        for item in content.items:
            run.add(item)
        run.warnings.extend(content.warnings)
        run.read += 1
        run.cursor = name
        return True


@dataclass
class _Run:
    cursor: str | None
    items: dict[str, Item] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    read: int = 0
    requests: int = 0

    def add(self, item: Item) -> None:
        """Once per id: a re-delivery with the same parsed content keeps the first version; a changed one
        wins, keeping the rubric the first had if it has none (a delta without the issue's sommaire)."""
        previous = self.items.get(item.id)
        if previous is not None and previous.content_hash() == item.content_hash():
            return
        if previous is not None and not item.rubric:
            item = replace(item, rubric=previous.rubric)
        self.items[item.id] = item

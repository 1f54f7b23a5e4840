"""The newsletter's one object: build a week's draft, edit it (optimistic versions), preview, publish, send.

Publishing freezes the draft, archives the issue (HTML + Markdown + its items, public) and opens one delivery per
active subscriber in the ledger (key ``newsletter-<issue>-<address hash>``: a second publish or send of the same
issue finds the keys taken and sends nothing twice). Sending goes through the ledger like alerts: claim
('sending') -> SMTP -> 'sent'; a temporary failure is retried at the next ``watcher newsletter send``, a
permanent one is held for a person.
"""

from __future__ import annotations

import csv
import hashlib
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from watcher.config import Config
from watcher.legal.normalize import iso
from watcher.newsletter.build import Week, health_notes, order_entries
from watcher.newsletter.config import NewsletterConfig, load_newsletter, parse_address
from watcher.newsletter.render import IssueRenderer, Rendered
from watcher.notify.base import Channel, Message
from watcher.util.errors import ConfigError, NotifyError, WatcherError

KIND = "newsletter"


class DraftConflict(WatcherError):
    """An edit made on a version of the draft that another editor (or a publish) has since replaced."""

    def __init__(self, draft_id: int, version: int, current: int | None, by: str = ""):
        self.draft_id, self.version, self.current = draft_id, version, current
        if current is None:
            message = f"draft {draft_id} does not exist"
        else:
            who = f" by {by}" if by else ""
            message = (f"draft {draft_id} was changed{who} since you opened it (your version {version}, now "
                       f"{current}); your change was not saved: reload the draft and apply it again")
        super().__init__(message)


@dataclass
class SendReport:
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    held: list[tuple[str, str]] = field(default_factory=list)
    already: int = 0  # deliveries of this issue already sent before this call


class Newsletter:
    """Drafts, issues and the list, over one Store and one configuration."""

    def __init__(self, store: Any, config: Config):
        self.store, self.config = store, config
        self.settings: NewsletterConfig = load_newsletter(config)

    # -- drafts -------------------------------------------------------------------------------------------------
    def build_draft(self, week_label: str | None, now: datetime) -> tuple[dict[str, Any], bool]:
        """The draft of the week (``2026-W23``; default: the week of ``now``) and whether it was just built.
        An existing draft of that week is returned as it is, with the editors' work."""
        week = Week.of(week_label, now, self.config.settings.timezone)
        self.sync_subscribers(now)
        existing = self.store.draft_for_week(week.label)
        if existing is not None:
            return existing, False
        candidates = self.store.week_candidates(week.start, week.end, self.settings.min_score)
        identifiers = self.store.identifiers_of([c["id"] for c in candidates])
        sources = {s.name: s for s in self.config.sources}
        entries = order_entries(candidates, identifiers, sources, self._theme_order(), self.settings.shortlist)
        stamp = iso(now) or ""
        notes = health_notes(self.store.fetch_failures(week.start, week.end))
        draft_id = self.store.create_draft(
            {"week": week.label, "period_start": week.start, "period_end": week.end, "title": self.settings.title,
             "introduction": "", "health_notes": notes, "created_at": stamp, "updated_at": stamp,
             "updated_by": "watcher"}, entries)
        return self.store.draft(draft_id), True

    def draft(self, draft_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        draft = self.store.draft(draft_id)
        if draft is None:
            raise WatcherError(f"no newsletter draft {draft_id}")
        return draft, self.store.draft_entries(draft_id)

    def _check(self, ok: bool, draft_id: int, version: int) -> None:
        if not ok:
            current = self.store.draft(draft_id)
            if current is not None and current["state"] != "draft":
                raise WatcherError(f"draft {draft_id} is already published; it cannot change any more")
            raise DraftConflict(draft_id, version, current and current["version"],
                                current["updated_by"] if current else "")

    def keep(self, draft_id: int, version: int, item_id: str, kept: bool, *, editor: str, now: datetime) -> None:
        self._check(self.store.keep_entry(draft_id, version, item_id, kept, now=iso(now), editor=editor),
                    draft_id, version)

    def move(self, draft_id: int, version: int, item_id: str, step: int, *, editor: str, now: datetime) -> None:
        self._check(self.store.move_entry(draft_id, version, item_id, step, now=iso(now), editor=editor),
                    draft_id, version)

    def edit(self, draft_id: int, version: int, *, editor: str, now: datetime, title: str | None = None,
             introduction: str | None = None, abstracts: Mapping[str, str] | None = None) -> None:
        self._check(self.store.edit_draft(draft_id, version, now=iso(now), editor=editor, title=title,
                                          introduction=introduction, abstracts=abstracts), draft_id, version)

    # -- rendering ----------------------------------------------------------------------------------------------
    def renderer(self) -> IssueRenderer:
        from classifiers.decide.themes import load_themes

        lang = self.settings.lang
        themes = {t.id: (t.label_fr if lang == "fr" else t.label_en)
                  for t in load_themes(self.config.settings.themes or None)}
        return IssueRenderer(lang=lang, public_url=self.config.settings.public_url,
                             timezone=self.config.settings.timezone, theme_labels=themes,
                             source_labels={s.name: s.label or s.publisher or s.name for s in self.config.sources})

    def _theme_order(self) -> list[str]:
        from classifiers.decide.themes import load_themes

        return [t.id for t in load_themes(self.config.settings.themes or None)]

    def preview(self, draft_id: int, *, unsubscribe_url: str = "") -> Rendered:
        """The issue exactly as a subscriber will receive it (their own unsubscribe link aside)."""
        draft, entries = self.draft(draft_id)
        return self.renderer().render(draft, entries, unsubscribe_url=unsubscribe_url or self.unsubscribe_url("…"))

    def unsubscribe_url(self, token: str) -> str:
        base = self.config.settings.public_url.rstrip("/")
        return f"{base}/-/newsletter/unsubscribe?token={token}" if base else ""

    # -- publishing ---------------------------------------------------------------------------------------------
    def publish(self, draft_id: int, version: int, *, editor: str, now: datetime) -> int:
        """Freeze and archive the draft as an issue, then queue one delivery per active subscriber (if a channel
        is configured). Returns the number of deliveries queued. Sending is ``send``."""
        draft, entries = self.draft(draft_id)
        rendered = self.renderer().render(draft, entries)
        kept = [e for e in entries if e["kept"]]
        issue = {"week": draft["week"], "title": draft["title"], "subject": rendered.subject,
                 "introduction": draft["introduction"], "html": rendered.html, "markdown": rendered.markdown}
        items = [{"item_id": e["item_id"], "position": n, "theme": e["theme"], "abstract": e["abstract"]}
                 for n, e in enumerate(kept)]
        self._check(self.store.publish_draft(draft_id, version, issue, items, now=iso(now), editor=editor),
                    draft_id, version)
        return self.queue(draft_id, now)

    def queue(self, issue_id: int, now: datetime) -> int:
        """One delivery per active subscriber not yet served for this issue (idempotent)."""
        if not self.settings.channel:
            return 0
        stamp = iso(now) or ""
        rows = [{"key": delivery_key(issue_id, s["email"]), "kind": KIND, "subscription": KIND,
                 "recipient": s["email"], "channel": self.settings.channel, "period": str(issue_id),
                 "state": "pending", "created_at": stamp, "updated_at": stamp}
                for s in self.store.subscribers()]
        return self.store.add_deliveries(rows)

    def send(self, issue_id: int, now: datetime, channel: Channel | None = None) -> SendReport:
        """Send the issue's due deliveries through the ledger: each address at most once."""
        issue = self.store.issue(issue_id)
        if issue is None:
            raise WatcherError(f"issue {issue_id} is not published")
        channel = channel or self._channel()
        report, stamp = SendReport(), iso(now) or ""
        people = {s["email"]: s for s in self.store.subscribers(active_only=False)}
        renderer = self.renderer()
        draft, entries = self.draft(issue_id)
        try:
            for row in self.store.newsletter_deliveries(issue_id):
                if row["state"] == "sent":
                    report.already += 1
                    continue
                person = people.get(row["recipient"], {})
                if person.get("state") != "active" or not self._due(row, stamp):
                    continue
                if not self.store.claim_delivery(row["key"], now=stamp, message_id=channel.message_id(row["key"])):
                    continue
                self._send_one(channel, renderer.render(draft, entries,
                                                        unsubscribe_url=self.unsubscribe_url(person["token"])),
                               row, person, now, report)
        finally:
            channel.close()
        return report

    @staticmethod
    def _due(row: Mapping[str, Any], stamp: str) -> bool:
        return row["state"] == "pending" or (row["state"] == "failed" and (row["next_attempt_at"] or "") <= stamp)

    def _send_one(self, channel: Channel, rendered: Rendered, row: Mapping[str, Any], person: Mapping[str, Any],
                  now: datetime, report: SendReport) -> None:
        stamp = iso(now) or ""
        message = Message(key=row["key"], subject=rendered.subject, text=rendered.markdown, html=rendered.html,
                          slack={}, person=person.get("name") or "", email=row["recipient"], date=now,
                          unsubscribe=self.unsubscribe_url(person["token"]), headers={"X-Watcher-Newsletter": row["period"]})
        try:
            channel.send(message)
        except NotifyError as exc:
            if exc.permanent:
                self.store.mark_held(row["key"], now=stamp, reason=f"permanent failure: {exc}")
                report.held.append((row["recipient"], str(exc)))
            else:
                self.store.mark_failed(row["key"], now=stamp, error=str(exc),
                                       next_attempt_at=iso(now + timedelta(minutes=5)) or "")
                report.failed.append((row["recipient"], str(exc)))
            return
        self.store.mark_sent(row["key"], now=stamp)
        report.sent.append(row["recipient"])

    def _channel(self) -> Channel:
        from watcher.notify import build_channel
        from watcher.notify.service import load_alerts

        if not self.settings.channel:
            raise ConfigError("no channel to send the newsletter through (set [newsletter] channel, or use "
                              "`watcher newsletter export`)", file=str(self.config.path), table="[newsletter]",
                              key="channel")
        channel_config = load_alerts(self.config, self.store.stored_subscriptions()).channel(self.settings.channel)
        if channel_config.kind != "email":
            raise ConfigError(f"channel {self.settings.channel!r} is {channel_config.kind}, not email",
                              file=str(self.config.path), table="[newsletter]", key="channel")
        return build_channel(channel_config)

    # -- the list -----------------------------------------------------------------------------------------------
    def sync_subscribers(self, now: datetime) -> int:
        """Add the configuration's addresses to the list (an address that unsubscribed stays out)."""
        return self.add_subscribers(((n, a) for n, a in self.settings.subscribers), now, origin="config")

    def add_subscribers(self, people: Iterable[tuple[str, str]], now: datetime, *, origin: str) -> int:
        rows = [{"email": address, "name": name, "lang": self.settings.lang, "token": secrets.token_urlsafe(18),
                 "origin": origin} for name, address in people]
        return int(self.store.add_subscribers(rows, now=iso(now) or ""))

    def import_csv(self, path: Path, now: datetime) -> tuple[int, list[str]]:
        """Addresses from a CSV file with an ``email`` column (and optionally ``name``); returns (added, rejected)."""
        people, rejected = [], []
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                parsed = parse_address(str(row.get("email") or ""))
                if parsed is None:
                    rejected.append(str(row.get("email") or ""))
                else:
                    people.append((str(row.get("name") or parsed[0]).strip(), parsed[1]))
        return self.add_subscribers(people, now, origin=f"csv:{path.name}"), rejected


def delivery_key(issue_id: int, address: str) -> str:
    return f"newsletter-{issue_id}-{hashlib.sha256(address.lower().encode()).hexdigest()[:16]}"


def export(rendered: Rendered, folder: Path, stem: str) -> list[Path]:
    """Write ``stem.html`` and ``stem.md`` into ``folder`` for a mailing tool of the firm's own."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.html", folder / f"{stem}.md"]
    paths[0].write_text(rendered.html, encoding="utf-8")
    paths[1].write_text(rendered.markdown, encoding="utf-8")
    return paths


def published_rendering(issue: Mapping[str, Any]) -> Rendered:
    return Rendered(subject=issue["subject"], html=issue["html"], markdown=issue["markdown"])


def kept_count(entries: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for e in entries if e["kept"])

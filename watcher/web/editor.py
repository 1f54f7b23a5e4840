"""The editors' workspace (``/-/newsletter``, login required) and the public newsletter pages.

Every form of a draft page carries the draft's ``version``. A submit saves the texts (title, introduction,
abstracts) and applies its button's action (keep, drop, up, down, publish) on that version: if another editor
saved first, nothing is written and the page answers 409 with the conflict and the text that was not saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from datasette.utils.asgi import Forbidden, NotFound, Response

from watcher.legal.normalize import iso
from watcher.newsletter.render import sanitize_issue_html
from watcher.newsletter.service import DraftConflict, Newsletter, kept_count
from watcher.util.errors import WatcherError
from watcher.web.context import context_of, is_editor


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _require_editor(request: Any) -> str:
    if not is_editor(request.actor):
        raise Forbidden("The newsletter workspace is for editors: log in at /-/login")
    return str(request.actor["id"])


async def _letter(datasette: Any, work: Any) -> Any:
    context = context_of(datasette)
    return await context.run(lambda store: work(Newsletter(store, context.config)))


async def index(datasette: Any, request: Any) -> Response:
    _require_editor(request)

    def read(letter: Newsletter) -> dict[str, Any]:
        return {"drafts": letter.store.drafts(), "subscribers": len(letter.store.subscribers()),
                "channel": letter.settings.channel}

    data = await _letter(datasette, read)
    return Response.html(await datasette.render_template("newsletter_index.html", data, request=request))


async def build(datasette: Any, request: Any) -> Response:
    editor = _require_editor(request)
    week = (await request.post_vars()).get("week") or None
    try:
        draft, created = await _letter(datasette, lambda letter: letter.build_draft(week, _now()))
    except WatcherError as exc:
        datasette.add_message(request, str(exc), datasette.ERROR)
        return Response.redirect("/-/newsletter")
    datasette.add_message(request, f"{'Built' if created else 'Opened the existing'} draft for {draft['week']}, "
                          f"{editor}")
    return Response.redirect(f"/-/newsletter/draft/{draft['id']}")


async def draft_page(datasette: Any, request: Any) -> Response:
    _require_editor(request)
    draft_id = int(request.url_vars["draft_id"])
    if request.method == "POST":
        return await _apply(datasette, request, draft_id)
    return await _render_draft(datasette, request, draft_id)


async def _render_draft(datasette: Any, request: Any, draft_id: int, *, conflict: str = "",
                        unsaved: Mapping[str, str] | None = None, status: int = 200) -> Response:
    def read(letter: Newsletter) -> dict[str, Any]:
        draft, entries = letter.draft(draft_id)
        groups: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            groups.setdefault(entry["theme"], []).append(entry)
        return {"draft": draft, "groups": groups, "kept": kept_count(entries), "total": len(entries),
                "subscribers": len(letter.store.subscribers()), "channel": letter.settings.channel}

    try:
        data = await _letter(datasette, read)
    except WatcherError as exc:
        raise NotFound(str(exc)) from None
    data.update(conflict=conflict, unsaved=unsaved or {}, theme_labels=dict(context_of(datasette).themes))
    html = await datasette.render_template("newsletter_draft.html", data, request=request)
    return Response.html(html, status=status)


def _texts(form: Mapping[str, str]) -> dict[str, Any]:
    abstracts = {key.split(":", 1)[1]: value.strip() for key, value in form.items() if key.startswith("abstract:")}
    return {"title": form.get("title"), "introduction": form.get("introduction"), "abstracts": abstracts}


async def _apply(datasette: Any, request: Any, draft_id: int) -> Response:
    editor = str(request.actor["id"])
    form = await request.post_vars()
    action, _, item_id = str(form.get("action") or "save").partition("|")
    try:
        version = int(form.get("version") or "")
    except ValueError:
        return Response.text("the form has no draft version", status=400)
    texts = _texts(form)

    def work(letter: Newsletter) -> int:
        now = _now()
        letter.edit(draft_id, version, editor=editor, now=now, **texts)
        current = version + 1
        if action in ("keep", "drop"):
            letter.keep(draft_id, current, item_id, action == "keep", editor=editor, now=now)
        elif action in ("up", "down"):
            letter.move(draft_id, current, item_id, -1 if action == "up" else 1, editor=editor, now=now)
        elif action == "publish":
            letter.sync_subscribers(now)
            letter.publish(draft_id, current, editor=editor, now=now)
            return len(letter.send(draft_id, now).sent) if letter.settings.channel else -1
        return 0

    try:
        sent = await _letter(datasette, work)
    except DraftConflict as exc:
        unsaved = {"introduction": texts["introduction"] or "", **texts["abstracts"]}
        return await _render_draft(datasette, request, draft_id, conflict=str(exc), unsaved=unsaved, status=409)
    except WatcherError as exc:
        datasette.add_message(request, str(exc), datasette.ERROR)
        return Response.redirect(f"/-/newsletter/draft/{draft_id}")
    if action == "publish":
        datasette.add_message(request, "Published and archived; " + (
            f"sent to {sent} subscriber(s)" if sent >= 0 else "no channel configured: export it from the CLI"))
        return Response.redirect(f"/-/newsletter/issues/{draft_id}")
    anchor = f"#entry-{item_id}" if item_id else ""
    return Response.redirect(f"/-/newsletter/draft/{draft_id}{anchor}")


async def preview(datasette: Any, request: Any) -> Response:
    """The issue exactly as e-mailed (HTML part)."""
    _require_editor(request)
    draft_id = int(request.url_vars["draft_id"])
    try:
        rendered = await _letter(datasette, lambda letter: letter.preview(draft_id))
    except WatcherError as exc:
        raise NotFound(str(exc)) from None
    return Response.html(sanitize_issue_html(rendered.html))


async def issues(datasette: Any, request: Any) -> Response:
    rows = await _letter(datasette, lambda letter: letter.store.issues())
    return Response.html(await datasette.render_template("newsletter_issues.html", {"issues": rows}, request=request))


async def issue(datasette: Any, request: Any) -> Response:
    """A published issue, public: the archived HTML (or Markdown with ``.md``)."""
    issue_id = int(request.url_vars["issue_id"])
    row = await _letter(datasette, lambda letter: letter.store.issue(issue_id))
    if row is None:
        raise NotFound(f"no published issue {issue_id}")
    if request.url_vars.get("format") == "md":
        return Response.text(row["markdown"], headers={"Content-Type": "text/markdown; charset=utf-8"})
    shown = {**row, "html": sanitize_issue_html(str(row["html"] or ""))}
    return Response.html(await datasette.render_template("newsletter_issue.html", {"issue": shown}, request=request))


async def unsubscribe(datasette: Any, request: Any) -> Response:
    """A subscriber's own link: GET asks to confirm, POST takes the address off the list (the confirm form, or a
    mail client's one-click POST to the link itself, RFC 8058)."""
    token = request.args.get("token") or ""
    if request.method == "POST":
        token = str((await request.post_vars()).get("token") or token)
        done = await _letter(datasette, lambda letter: letter.store.unsubscribe(now=_stamp(), token=token))
        return Response.html(await datasette.render_template(
            "newsletter_unsubscribe.html", {"done": done, "token": token, "email": ""}, request=request))
    person = await _letter(datasette, lambda letter: letter.store.subscriber_by_token(token)) if token else None
    return Response.html(await datasette.render_template(
        "newsletter_unsubscribe.html", {"done": None, "token": token, "email": person["email"] if person else ""},
        request=request), status=200 if person else 404)


def _stamp() -> str:
    return iso(_now()) or ""


ROUTES = [
    (r"^/-/newsletter$", index),
    (r"^/-/newsletter/build$", build),
    (r"^/-/newsletter/draft/(?P<draft_id>\d{1,15})$", draft_page),
    (r"^/-/newsletter/draft/(?P<draft_id>\d{1,15})/preview$", preview),
    (r"^/-/newsletter/issues$", issues),
    (r"^/-/newsletter/issues/(?P<issue_id>\d{1,15})(\.(?P<format>md))?$", issue),
    (r"^/-/newsletter/unsubscribe$", unsubscribe),
]

"""The Datasette plugin of the archive (registered by ``build_datasette``, never discovered by name).

- Who sees what: a visitor sees the public tables (``PUBLIC_TABLES``) and the canned queries, read-only; every other
  table (drafts, abstracts, subscribers, the delivery ledger, plumbing), the SQL box and the newsletter pages need
  an editor's login (``/-/login``, datasette-auth-passwords). New tables are private until listed here.
- Pages: ``/`` opens on the items; an item's page shows its themes (score, reason, origin), identifiers,
  versions and links; ``/-/atom/theme/<theme>.atom`` and ``.atom`` on any items search are Atom feeds; a month
  facet; readable JSON columns; ``/-/newsletter...`` is the editors' workspace (``watcher.web.editor``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from datasette import hookimpl
from datasette.filters import FilterArguments, Filters
from datasette.utils import tilde_decode, tilde_encode
from datasette.utils.asgi import NotFound, Response
from markupsafe import Markup, escape

from watcher.legal.acts import official_url
from watcher.search.similar import similar_items
from watcher.web import atom, door, editor, legal_pages
from watcher.web.context import attached, context_of, is_editor
from watcher.web.facets import RANKED_CLAUSE, MonthFacet, ThemeFacet, theme_clause, theme_sizes

PUBLIC_TABLES = frozenset({"items", "item_themes", "identifiers", "item_versions", "sources", "fetch_log",
                           "newsletter_issues", "newsletter_issue_items"})
EDITOR_ACTIONS = frozenset({"execute-sql", "view-database-download", "watcher-newsletter"})
ITEM_FEED_LIMIT = 50
SIMILAR_LIMIT = 5  # "similar items" on an item's page
IDENTIFIER_LINKS = {
    "eli": "{value}", "celex": "https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=CELEX:{value}",
    "jorftext": "https://www.legifrance.gouv.fr/jorf/id/{value}",
}


@hookimpl
def permission_allowed(datasette: Any, actor: Any, action: str, resource: Any) -> bool | None:
    if not attached(datasette) or is_editor(actor):
        return None  # Datasette's defaults: everything readable
    if action in EDITOR_ACTIONS:
        return False
    if action == "view-table" and isinstance(resource, tuple) and resource[1] not in PUBLIC_TABLES:
        return False
    return None


@hookimpl
def skip_csrf(datasette: Any, scope: Any) -> bool | None:
    """One-click unsubscribe (RFC 8058): a mail client POSTs to the link of ``List-Unsubscribe`` without a form;
    the link's token is the proof, there is no session to forge a request for."""
    return True if attached(datasette) and scope.get("path") == "/-/newsletter/unsubscribe" else None


@hookimpl(wrapper=True)
def handle_exception(datasette: Any, request: Any, exception: BaseException) -> Any:
    """An error page with one line in the log, never a traceback (``watcher.web.door.error_page``). A wrapper: on
    watcher's Datasette it replaces the answers of the other handlers before they run, Datasette's default among
    them (which prints a traceback with every local variable, even for a 404)."""
    results = yield
    if not attached(datasette):
        return results

    async def inner() -> Response:
        return await door.error_page(datasette, request, exception)

    return [inner]


@hookimpl
def register_facet_classes() -> list[type]:
    return [MonthFacet, ThemeFacet]


@hookimpl
def filters_from_request(datasette: Any, request: Any, database: str, table: str | None) -> Any:
    """On the items of watcher's archive:

    - ``?_theme=ai`` (repeatable: every one must match): the items carrying that theme, through the index of
      ``item_themes`` (Datasette's own ``themes__arraycontains=ai`` reads the JSON of every item); how depends on
      how many items the theme holds (``watcher.web.facets.theme_clause``);
    - ``?_search=`` without a sort chosen: ranked by relevance (``watcher.web.facets.RANKED_CLAUSE``)."""
    if table != "items" or not attached(datasette):
        return None

    async def inner() -> FilterArguments | None:
        themes = request.args.getlist("_theme")
        params = {f"watcher_theme_{n}": theme for n, theme in enumerate(themes)}
        sizes = await theme_sizes(datasette.get_database(database), themes) if themes else {}
        clauses = [theme_clause(name, rare=sizes.get(theme, False)) for name, theme in params.items()]
        ranked = request.args.get("_search") and not any(request.args.get(k)
                                                         for k in ("_sort", "_sort_desc", "_next"))
        if ranked:
            clauses.append(RANKED_CLAUSE)
        if not clauses:
            return None
        return FilterArguments(clauses, params=params, human_descriptions=[f'theme is "{t}"' for t in themes])

    return inner


def ranked_description(request: Any) -> str | None:
    """What a page ranked by relevance shows, as Datasette words its description: Datasette's own would end with
    the table's default order ("sorted by legal_date descending"), which a ranked page does not follow."""
    if not request.args.get("_search") or any(request.args.get(k) for k in ("_sort", "_sort_desc", "_next")):
        return None
    filter_args = [(k, v) for k in request.args if not (k.startswith("_") and "__" not in k)
                   for v in request.args.getlist(k)]
    extra = [f'search matches "{request.args["_search"]}"',
             *(f'theme is "{t}"' for t in request.args.getlist("_theme"))]
    return Filters(sorted(filter_args)).human_description_en(extra=extra) + ", best matches first"


@hookimpl
def prepare_jinja2_environment(env: Any) -> None:
    env.filters["tilde"] = tilde_encode


@hookimpl
def menu_links(datasette: Any, actor: Any) -> list[dict[str, str]] | None:
    if not attached(datasette):
        return None
    w = context_of(datasette).words.w
    links = [{"href": "/watcher/items", "label": w["archive"]}, {"href": "/-/newsletter/issues", "label": w["issues"]}]
    if is_editor(actor):
        links.append({"href": "/-/newsletter", "label": w["editor"]})
    return links


@hookimpl(tryfirst=True)
def register_routes() -> list[tuple[str, Any]]:
    """Datasette asks for routes while it is being built, before ``build_datasette`` attaches watcher to it: every
    route is added, and answers 404 on a Datasette that is not watcher's. Called first (``tryfirst``), so watcher's
    ``/-/login`` and ``/-/logout`` (``watcher.web.door``) answer before datasette-auth-passwords' and Datasette's."""
    return [(pattern, _only_ours(view)) for pattern, view in [
        (r"^/-/atom/theme/(?P<theme>[A-Za-z0-9_-]+)\.atom$", theme_feed), *editor.ROUTES, *legal_pages.ROUTES,
        *door.ROUTES]]


def _only_ours(view: Any) -> Any:
    async def answer(datasette: Any, request: Any) -> Response:
        if not attached(datasette):
            raise NotFound("not found")
        return await view(datasette, request)

    return answer


@hookimpl(tryfirst=True)
def actor_from_request(datasette: Any, request: Any) -> Any:
    """The editor of the live session found by ``watcher.web.door.guard`` (None: a visitor)."""
    return request.scope.get("watcher.actor") if attached(datasette) else None


# pages of installed plugins that watcher's server does not offer: the password tool hashes any text sent to it
# (480,000 PBKDF2 rounds a request, for anyone)
_CLOSED = ("/-/password-tool",)


@hookimpl
def asgi_wrapper(datasette: Any) -> Any:
    """``/`` opens on the items (on watcher's Datasette; any other keeps Datasette's own home page); every answer
    goes through the editors' door (``watcher.web.door.guard``: session, security headers, cookie flags)."""
    def wrap(app: Any) -> Any:
        async def opens_on_items(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope.get("type") == "http" and attached(datasette):
                if scope.get("path") == "/":
                    await Response.redirect("/watcher/items").asgi_send(send)
                    return
                if scope.get("path") in _CLOSED:
                    await Response.text("not found", status=404).asgi_send(send)
                    return
            await app(scope, receive, send)

        return door.guard(datasette, opens_on_items)

    return wrap


async def theme_feed(datasette: Any, request: Any) -> Response:
    context = context_of(datasette)
    theme = request.url_vars["theme"]
    labels = dict(context.themes)
    items = await context.run(lambda store: store.theme_feed(theme, ITEM_FEED_LIMIT))
    if not items and theme not in labels:
        return Response.text(f"no theme {theme!r}", status=404)
    base = context.base_url(datasette, request)
    feed = atom.Feed(url=f"{base}/-/atom/theme/{theme}.atom", title=f"watcher — {labels.get(theme, theme)}",
                     html_url=f"{base}/watcher/items?{urlencode({'_theme': theme})}")
    body = atom.render_feed(feed, items, base=base, now=datetime.now(UTC))
    return Response(body, content_type=atom.CONTENT_TYPE)


@hookimpl
def register_output_renderer() -> dict[str, Any]:
    """``.atom`` on the items table with any search, filter or sort: a feed per saved search."""
    return {"extension": "atom", "render": render_search_feed, "can_render": can_render_feed}


def can_render_feed(datasette: Any, table: str | None, columns: Sequence[str]) -> bool:
    return attached(datasette) and table == "items" and {"id", "title"} <= set(columns)


def render_search_feed(datasette: Any, request: Any, rows: Sequence[Any], columns: Sequence[str],
                       table: str | None) -> Response:
    if not can_render_feed(datasette, table, columns):
        return Response.text("Atom feeds are offered on the items table", status=400)
    base = context_of(datasette).base_url(datasette, request)
    query = sorted((k, v) for k in request.args for v in request.args.getlist(k)
                   if not k.startswith("_") or k in ("_search", "_theme", "_sort", "_sort_desc"))
    suffix = f"?{urlencode(query)}" if query else ""
    search = request.args.get("_search")
    title = f"watcher — {'search « ' + search + ' »' if search else 'archive'}"
    feed = atom.Feed(url=f"{base}/watcher/items.atom{suffix}", title=title, html_url=f"{base}/watcher/items{suffix}")
    items = [dict(zip(columns, row, strict=False)) for row in rows]
    return Response(atom.render_feed(feed, items, base=base, now=datetime.now(UTC)), content_type=atom.CONTENT_TYPE)


@hookimpl
def render_cell(datasette: Any, value: Any, column: str, table: str | None) -> Markup | None:
    """JSON columns of the items shown as people read them."""
    if not attached(datasette) or table != "items" or not isinstance(value, str) or column not in ("themes", "identifiers", "tags"):
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    if isinstance(decoded, list):
        words = context_of(datasette).words
        if not decoded:  # an untagged item: said, not "[]"
            return Markup(f'<span class="watcher-empty">{escape(words.label(column, ""))}</span>')
        return Markup(" ".join(f'<span class="watcher-badge">{escape(words.label(column, v))}</span>' for v in decoded))
    if isinstance(decoded, dict):
        return Markup("<br>".join(f"<strong>{escape(k)}</strong> {escape(v)}" for k, v in decoded.items()))
    return None


@hookimpl
def extra_css_urls(datasette: Any) -> list[str]:
    return ["/-/watcher-static/watcher.css"] if attached(datasette) else []


@hookimpl
def extra_js_urls(datasette: Any) -> list[str]:
    return ["/-/watcher-static/editor.js"] if attached(datasette) else []


@hookimpl
def extra_template_vars(view_name: str, table: str | None, request: Any, datasette: Any) -> Any:
    async def inner() -> dict[str, Any]:
        if not attached(datasette):
            return {}
        context = context_of(datasette)
        extra: dict[str, Any] = {"watcher_themes": context.themes, "watcher_editor": is_editor(request.actor),
                                 **context.words.template_vars()}
        if view_name == "table" and table == "items" and request is not None:
            description = ranked_description(request)
            if description:
                extra["human_description_en"] = description
        if view_name == "row" and table == "items" and request is not None:
            extra["watcher_item"] = await item_details(datasette, tilde_decode(request.url_vars["pks"]))
        return extra

    return inner


async def item_details(datasette: Any, item_id: str) -> dict[str, Any]:
    """What an item's page shows beside its columns: themes (score, reason, origin), identifiers, versions, and
    the items closest in meaning (``similar``: id, title, source, legal date of public item rows only)."""
    context = context_of(datasette)

    def read(store: Any) -> dict[str, Any]:
        versions = store.versions(item_id)
        identifiers = store.identifiers_of([item_id])[item_id]
        return {"themes": store.themes_of(item_id), "identifiers": identifiers,
                "versions": [{k: v for k, v in row.items() if k != "text"} for row in versions],
                "similar": similar_rows(store, item_id),
                # official links (watcher.legal.acts), the archive resolving numbers to its JO / CNIL texts
                "official": {(s, v): official_url(s, v, store.act_url)[0] or "" for s, v in identifiers},
                "links": store.links_of(item_id)}

    details = await context.run(read)
    details["identifier_links"] = [(scheme, value, details["official"].get((scheme, value)) or
                                    identifier_link(scheme, value)) for scheme, value in details["identifiers"]]
    details["theme_labels"] = dict(context.themes)
    return details


def similar_rows(store: Any, item_id: str) -> list[dict[str, str]]:
    """The items closest in meaning to ``item_id`` from the stored embeddings ([] when it has none, or when the
    archive predates the embeddings table): only columns of the public ``items`` table leave this function."""
    if not store.db["item_embeddings"].exists():
        return []
    return [{key: str(s.item[key] or "") for key in ("id", "title", "source", "legal_date") if key in s.item}
            for s in similar_items(store, item_id, limit=SIMILAR_LIMIT)]


def identifier_link(scheme: str, value: str) -> str:
    template = IDENTIFIER_LINKS.get(scheme.lower())
    if template is None:
        return ""
    link = template.format(value=value)
    return link if link.startswith(("https://", "http://")) else ""


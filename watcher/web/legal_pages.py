"""The archive's pages about acts: ``/-/act/<scheme>/<value>`` (the act, its official link, and everything that
names it or is linked to it, in date order) and ``/-/versions/<item id>`` (what changed between an item's versions,
as a readable diff)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from datasette.utils.asgi import Response

from watcher.legal import acts as legal_acts
from watcher.legal.versions import diff_versions
from watcher.web.context import context_of


async def act_page(datasette: Any, request: Any) -> Response:
    scheme, value = request.url_vars["scheme"], unquote(request.url_vars["value"])
    if scheme not in legal_acts.ACT_SCHEMES and scheme != "nor_base":
        return Response.text(f"no such kind of act identifier: {scheme!r}", status=404)

    def read(store: Any) -> dict[str, Any]:
        page = store.act_page([(scheme, value)])
        url, search = legal_acts.official_url(scheme, value, store.act_url)
        return {**page, "url": url, "search": search}

    context = context_of(datasette)
    data = await context.run(read)
    words = context.words
    data.update(scheme=scheme, value=value, label=legal_acts.label(scheme, value, words.lang), **words.template_vars())
    status = 200 if data["acts"] or data["citing"] else 404
    return Response.html(await datasette.render_template("act.html", data, request=request), status=status)


async def versions_page(datasette: Any, request: Any) -> Response:
    item_id = unquote(request.url_vars["item"])

    def read(store: Any) -> dict[str, Any] | None:
        item = store.get_item(item_id)
        if item is None:
            return None
        return {"item": item, "diffs": diff_versions(store.versions(item_id))}

    context = context_of(datasette)
    data = await context.run(read)
    if data is None:
        return Response.text(f"no item {item_id!r}", status=404)
    data.update(context.words.template_vars())
    return Response.html(await datasette.render_template("versions.html", data, request=request))


ROUTES = [
    (r"^/-/act/(?P<scheme>[a-z_]+)/(?P<value>.+)$", act_page),
    (r"^/-/versions/(?P<item>.+)$", versions_page),
]

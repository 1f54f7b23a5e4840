"""Schema versions of the archive, as sqlite-utils migrations (applied in order, each once)."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from store import counts

migrations = Migrations("watcher")


@migrations()
def m001_items(db: Database) -> None:
    db.table("items").create(
        {
            "id": str, "source": str, "url": str, "title": str, "summary": str, "text": str,
            "published": str, "lang": str, "nature": str, "authority": str, "rubric": str,
            "identifiers": str, "tags": str, "extra": str,
            "content_hash": str, "version": int, "first_seen": str, "last_seen": str, "updated_at": str,
        },
        pk="id",
        not_null={"source", "title"},
    )
    db.table("items").create_index(["source", "published"])
    db.table("items").create_index(["published"])
    db.table("items").create_index(["nature"])
    db.table("item_versions").create(
        {
            "item_id": str, "version": int, "content_hash": str, "seen_at": str,
            "title": str, "summary": str, "text": str, "nature": str, "identifiers": str,
        },
        pk=("item_id", "version"),
        foreign_keys=[("item_id", "items", "id")],
    )
    db.table("identifiers").create(
        {"item_id": str, "scheme": str, "value": str},
        pk=("item_id", "scheme", "value"),
        foreign_keys=[("item_id", "items", "id")],
    )
    db.table("identifiers").create_index(["scheme", "value"])
    db.table("items").enable_fts(["title", "summary", "text"], fts_version="FTS5", create_triggers=True,
                           tokenize="unicode61 remove_diacritics 2")


@migrations()
def m002_sources(db: Database) -> None:
    db.table("sources").create(
        {
            "name": str, "kind": str, "etag": str, "last_modified": str, "cursor": str,
            "last_attempt": str, "last_success": str, "last_error": str, "last_error_at": str,
            "consecutive_failures": int, "items_total": int,
        },
        pk="name",
    )
    db.table("fetch_log").create(
        {
            "id": int, "source": str, "started_at": str, "finished_at": str, "outcome": str,
            "requests": int, "items_seen": int, "items_new": int, "items_changed": int, "error": str,
            "duration_ms": int,
        },
        pk="id",
    )
    db.table("fetch_log").create_index(["source", "started_at"])


@migrations()
def m003_themes(db: Database) -> None:
    db.table("item_themes").create(
        {
            "item_id": str, "theme": str, "score": float, "reason": str, "origin": str,
            "model": str, "model_version": str, "classified_at": str,
        },
        pk=("item_id", "theme"),
        foreign_keys=[("item_id", "items", "id")],
    )
    db.table("item_themes").create_index(["theme", "score"])
    db.table("classifications").create(
        {"item_id": str, "content_hash": str, "model": str, "model_version": str, "classified_at": str,
         "in_scope_untagged": int, "scope_reason": str},
        pk="item_id",
        foreign_keys=[("item_id", "items", "id")],
    )
    db.table("labels").create(
        {"id": int, "item_id": str, "theme": str, "action": str, "author": str, "created_at": str, "note": str},
        pk="id",
        foreign_keys=[("item_id", "items", "id")],
    )
    db.table("labels").create_index(["item_id"])


@migrations()
def m004_alerts(db: Database) -> None:
    """Subscriptions kept in the database, the delivery ledger, what each delivery carries, and the alert queue.

    ``alert_queue`` is filled by a trigger on ``item_themes``: every theme row written (by a classifier or a person)
    queues itself, and the planner drains the queue. Rows deleted before planning (a person removed the theme)
    simply no longer join, so they never alert. Themes written before this migration are not queued: installing
    alerts does not mail the whole archive.
    """
    db.table("subscriptions").create({"name": str, "spec": str, "created_at": str, "updated_at": str}, pk="name")
    db.table("deliveries").create(
        {
            "key": str, "kind": str, "subscription": str, "recipient": str, "channel": str, "period": str,
            "item_id": str, "state": str, "attempts": int, "next_attempt_at": str, "last_error": str,
            "created_at": str, "sending_at": str, "sent_at": str, "updated_at": str, "message_id": str,
        },
        pk="key",
        not_null={"kind", "subscription", "recipient", "channel", "state"},
        defaults={"attempts": 0, "last_error": "", "period": "", "item_id": ""},
    )
    db.table("deliveries").create_index(["state", "next_attempt_at"])
    db.table("deliveries").create_index(["subscription", "created_at"])
    db.table("delivery_items").create(
        {
            "subscription": str, "item_id": str, "theme": str, "score": float, "cadence": str, "matched_at": str,
            "delivery_key": str, "withdrawn": int,
        },
        pk=("subscription", "item_id"),
        foreign_keys=[("item_id", "items", "id")],
        defaults={"withdrawn": 0},
    )
    db.table("delivery_items").create_index(["subscription", "delivery_key", "matched_at"])
    db.execute("create table alert_queue (id integer primary key autoincrement, item_id text not null, "
               "theme text not null)")
    db.execute("create trigger item_themes_alert_queue after insert on item_themes begin "
               "insert into alert_queue (item_id, theme) values (new.item_id, new.theme); end")


@migrations()
def m005_items_themes_column(db: Database) -> None:
    """A JSON array of each item's current themes on the items table itself, so that Datasette can facet and
    filter the archive by theme (``_facet_array=themes``) together with full-text search."""
    db.table("items").add_column("themes", str, not_null_default="[]")
    db.execute("""update items set themes = coalesce((select json_group_array(theme) from
                  (select theme from item_themes where item_id = items.id order by theme)), '[]')""")


@migrations()
def m006_fts_maintenance(db: Database) -> None:
    """Full-text index maintenance that costs what it must:
    - new items are indexed by the store in one statement per batch (``Store.upsert_items``), not by a per-row
      trigger: one long step that releases the GIL, so parsing in other threads goes on meanwhile;
    - an update re-indexes only when title, summary or text change (not when ``last_seen`` or ``themes`` do)."""
    db.execute("drop trigger if exists items_ai")
    db.execute("drop trigger if exists items_au")
    db.execute("""create trigger items_au after update of title, summary, text on items begin
        insert into items_fts (items_fts, rowid, title, summary, text)
            values ('delete', old.rowid, old.title, old.summary, old.text);
        insert into items_fts (rowid, title, summary, text) values (new.rowid, new.title, new.summary, new.text);
    end""")


@migrations()
def m007_sources_items_total_derived(db: Database) -> None:
    """The per-source item count is derived from ``items`` when asked (``Store.sources_health``)."""
    db.table("sources").transform(drop={"items_total"})


# The kinds of act as watcher.legal.natures read them when m008_alerts_legal_date was written: (lower-cased raw value,
# code). A migration is a snapshot: the vocabulary may grow later, this backfill does not change.
_NATURES_2026 = (
    ("loi", "loi"), ("loi_organique", "loi"), ("ordonnance", "ordonnance"), ("decret", "decret"),
    ("arrete", "arrete"), ("circulaire", "circulaire"), ("instruction", "circulaire"), ("decision", "decision"),
    ("avis", "avis"), ("deliberation", "deliberation"), ("rapport", "rapport"), ("actualite", "actualite"),
    ("actualité", "actualite"), ("information de securite", "information-securite"),
    ("information de sécurité", "information-securite"), ("rappel", "rappel"), ("article", "article"),
    ("algorithme", "algorithme"),
)
_CNIL_NATURES_2026 = (
    ("sanction", "deliberation-sanction"), ("recommandation/lignes directrices", "deliberation-recommandation"),
    ("recommandation", "deliberation-recommandation"), ("avis", "deliberation-avis"),
    ("autorisation", "deliberation-autorisation"), ("autre autorisation", "deliberation-autorisation"),
    ("dispense", "deliberation-autorisation"), ("référentiel", "deliberation-referentiel"),
    ("règlement type", "deliberation-referentiel"), ("norme simplifiée", "deliberation-referentiel"),
    ("mise en demeure", "deliberation-mise-en-demeure"), ("deliberation", "deliberation"),
    ("decision", "decision"),
)


def _case(pairs: tuple[tuple[str, str], ...], otherwise: str) -> str:
    whens = " ".join(f"when '{raw}' then '{code}'" for raw, code in pairs)
    return f"case lower(trim(nature_raw)) {whens} else {otherwise} end"


# Europe/Paris is UTC+2 from the last Sunday of March, 01:00 UTC, to the last Sunday of October, 01:00 UTC
_SUMMER = ("published >= date(substr(published, 1, 4) || '-03-31', '-6 days', 'weekday 0') || 'T01:00:00Z' and "
           "published < date(substr(published, 1, 4) || '-10-31', '-6 days', 'weekday 0') || 'T01:00:00Z'")
PARIS_DATE_SQL = f"date(published, case when {_SUMMER} then '+2 hours' else '+1 hours' end)"


@migrations()
def m008_alerts_legal_date(db: Database) -> None:
    """Alerts a lawyer can trust:

    - ``items.legal_date``: the ISO date a lawyer cites (JO issue date, a CNIL délibération's date, else the
      publication time as a date in Europe/Paris), beside the exact ``published`` instant; backfilled here;
    - ``items.nature_raw``: the source's own nature, while ``nature`` becomes a code of the kinds-of-act
      vocabulary (``watcher.legal.natures``); backfilled from a snapshot of that vocabulary (unknown values: ``autre``);
    - ``subscription_starts``: when the planner first saw each subscription; what was stored before is a
      baseline, not news (no instant alert for it)."""
    items = db.table("items")
    items.add_column("legal_date", str, not_null_default="")
    items.add_column("nature_raw", str, not_null_default="")
    db.execute("update items set nature_raw = coalesce(nature, '')")
    db.execute(f"update items set legal_date = coalesce(case when id like 'cnil:CNILTEXT%' then "
               f"json_extract(identifiers, '$.date_texte') end, {PARIS_DATE_SQL}, '') where published is not null "
               "and published != ''")
    db.execute(f"""update items set nature = case when nature_raw = '' then '' when id like 'cnil:CNILTEXT%'
                   then {_case(_CNIL_NATURES_2026, "'deliberation'")} else {_case(_NATURES_2026, "'autre'")} end""")
    items.create_index(["legal_date"])
    db.table("subscription_starts").create({"name": str, "started_at": str}, pk="name")


@migrations()
def m008_archive_newsletter(db: Database) -> None:
    """The editors' weekly newsletter: drafts (private until published), their entries, the subscriber list, and
    the public archive of published issues with the items they link to.

    A draft carries a ``version`` that every edit raises: an edit made on an older version is refused (two editors
    on one draft never silently overwrite each other). Only ``newsletter_issues`` and ``newsletter_issue_items``
    are public; Datasette shows the other tables to a logged-in editor only (``watcher.web``)."""
    db.table("newsletter_drafts").create(
        {"id": int, "week": str, "period_start": str, "period_end": str, "title": str, "introduction": str,
         "health_notes": str, "state": str, "version": int, "created_at": str, "updated_at": str,
         "updated_by": str, "published_at": str},
        pk="id", not_null={"week", "state", "version"}, defaults={"introduction": "", "health_notes": "[]"},
    )
    db.table("newsletter_entries").create(
        {"draft_id": int, "item_id": str, "theme": str, "position": int, "kept": int, "abstract": str,
         "rank": float, "cluster": str},
        pk=("draft_id", "item_id"),
        foreign_keys=[("draft_id", "newsletter_drafts", "id"), ("item_id", "items", "id")],
        defaults={"kept": 1, "abstract": ""},
    )
    db.table("newsletter_subscribers").create(
        {"email": str, "name": str, "lang": str, "token": str, "state": str, "origin": str, "created_at": str,
         "unsubscribed_at": str},
        pk="email", not_null={"token", "state"},
    )
    db.table("newsletter_subscribers").create_index(["token"], unique=True)
    db.table("newsletter_issues").create(
        {"id": int, "week": str, "title": str, "subject": str, "introduction": str, "published_at": str,
         "html": str, "markdown": str},
        pk="id",
    )
    db.table("newsletter_issue_items").create(
        {"issue_id": int, "item_id": str, "position": int, "theme": str, "abstract": str},
        pk=("issue_id", "item_id"),
        foreign_keys=[("issue_id", "newsletter_issues", "id"), ("item_id", "items", "id")],
    )


@migrations()
def m008_model_embeddings(db: Database) -> None:
    """One embedding per item (search by meaning, ``store.vectors``): int8 bytes of the unit vector, the model that
    computed it and the content hash it was computed from."""
    db.execute("""create table if not exists item_embeddings (
        item_id text primary key,
        model text not null,
        dim integer not null,
        embedding blob not null,
        content_hash text not null default ''
    )""")
    db.execute("create index if not exists item_embeddings_model on item_embeddings (model)")


@migrations()
def m008_ops_incidents(db: Database) -> None:
    """Operations incidents: a source failing, empty or silent, told to the admin once when it opens and once when
    it heals. At most one open incident per (source, kind); ``open_key`` / ``close_key`` are the keys of the
    ledger deliveries that carry the two messages."""
    db.table("incidents").create(
        {"id": int, "source": str, "kind": str, "opened_at": str, "closed_at": str, "detail": str,
         "open_key": str, "close_key": str},
        pk="id",
        not_null={"source", "kind", "opened_at"},
    )
    db.execute("create unique index incidents_open on incidents (source, kind) where closed_at is null")
    db.table("incidents").create_index(["open_key"])
    db.table("incidents").create_index(["close_key"])


@migrations()
def m009_legal_links(db: Database) -> None:
    """Legal identity between items (``watcher.legal.links``, ``store.links``):

    - ``act_mentions``: each act an item IS (``role`` 'is': a JO or CNIL text's own NOR, number, JORFTEXT...) or
      names (``role`` 'cites', with the ``kind`` of mention: cites, applies, amends, rectifies, and the words
      around it, kept for acts known only by their date);
    - ``links``: an item that names an act, to the archived item that IS that act (``kind``: cites, applies,
      amends, rectifies, publishes), through which identifier, and why;
    - ``link_state``: the content each item was last linked from (a changed item is linked again)."""
    db.table("act_mentions").create(
        {"item_id": str, "scheme": str, "value": str, "role": str, "kind": str, "context": str},
        pk=("item_id", "scheme", "value", "role"),
        foreign_keys=[("item_id", "items", "id")],
        defaults={"kind": "", "context": ""},
    )
    db.table("act_mentions").create_index(["scheme", "value", "role"])
    db.table("links").create(
        {"from_id": str, "to_id": str, "kind": str, "scheme": str, "value": str, "reason": str,
         "created_at": str},
        pk=("from_id", "to_id"),
        foreign_keys=[("from_id", "items", "id"), ("to_id", "items", "id")],
    )
    db.table("links").create_index(["to_id"])
    db.table("link_state").create({"item_id": str, "content_hash": str}, pk="item_id",
                                  foreign_keys=[("item_id", "items", "id")])


@migrations()
def m009_web_sessions(db: Database) -> None:
    """The editors' door (``watcher.web.door``): server-side sessions, so that a session expires and logging out
    revokes it (the cookie holds a random token; only its SHA-256 is stored), and the failed logins counted per
    account and per client address, for the delay that grows with them."""
    db.table("web_sessions").create(
        {"token_hash": str, "editor": str, "created_at": float, "last_seen": float, "expires_at": float,
         "revoked_at": float},
        pk="token_hash", not_null={"editor", "created_at", "last_seen", "expires_at"},
    )
    db.table("web_sessions").create_index(["expires_at"])
    db.table("web_login_failures").create(
        {"key": str, "failures": int, "last_failure": float}, pk="key", not_null={"failures", "last_failure"},
    )


@migrations()
def m009_counts(db: Database) -> None:
    """Counts kept per theme, source, kind of act, authority, language and month (``store.counts``): the archive's
    pages read them instead of counting every item at each request. Triggers on ``items`` keep them exact;
    backfilled here from the items already stored."""
    counts.install(db.conn)

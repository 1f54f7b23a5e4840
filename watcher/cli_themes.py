"""Theme commands: ``classify`` (pending items, or ``--eval FILE``), ``label``, ``train``, ``untagged`` and ``model``.

Thin clients of ``classifiers`` and the store. Each takes ``--config PATH`` (default: the group's ``--config``,
``$WATCHER_CONFIG`` or ``./sources.toml``); ``classify --eval`` needs no config at all.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from classifiers.evaluation import GOLD_SOURCES, evaluate, format_table, load_gold
from classifiers.hybrid import DEFAULT_HEAD, RULES_ONLY, build_classifier, head_path
from classifiers.keyword import KeywordClassifier
from classifiers.themes import load_themes
from store import Store
from watcher.app import model_settings, source_profiles
from watcher.config import Config, Settings, load_config, with_env_overrides
from watcher.errors import ConfigError
from watcher.records import item_from_row

CONFIG_HELP = "path of sources.toml (default: the group's --config, $WATCHER_CONFIG or ./sources.toml)"
DEV_GOLD = Path("tests/fixtures/gold/dev.jsonl")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _config(ctx: click.Context, path: str | None) -> Config:
    if path:
        return load_config(path)
    config = getattr(ctx.obj, "config", None)
    return config if isinstance(config, Config) else load_config(None)


def _settings(ctx: click.Context, path: str | None) -> Settings:
    """The settings for commands that work without a config file (``classify --eval``)."""
    try:
        return _config(ctx, path).settings
    except ConfigError:
        if path:
            raise
        return with_env_overrides(Settings())


def _rules_only(ctx: click.Context, flag: bool) -> bool:
    """``--rules-only`` given to the command or to the ``watcher`` group."""
    return flag or bool(getattr(ctx.obj, "rules_only", False))


def _store(ctx: click.Context, path: str | None) -> Store:
    return Store(_config(ctx, path).database)


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
@click.option("--eval", "eval_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="measure on a labelled file in the gold format instead of classifying the store")
@click.option("--json", "as_json", is_flag=True, help="with --eval: print one JSON object")
@click.option("--rules-only", is_flag=True, help="do not load the embedding model (rules and identifiers only)")
@click.pass_context
def classify(ctx: click.Context, config_path: str | None, eval_file: str | None, as_json: bool,
             rules_only: bool) -> None:
    """Give themes to the items not classified yet (or changed), or with --eval measure the classifier."""
    rules_only = _rules_only(ctx, rules_only)
    if eval_file:
        _evaluate(_settings(ctx, config_path), Path(eval_file), as_json, rules_only)
        return
    from watcher.pipeline import classify_pending

    config = _config(ctx, config_path)
    store = Store(config.database)
    factory = lambda: build_classifier(model_settings(config.settings, rules_only),  # noqa: E731
                                       head_path(config.database), source_profiles(config))
    try:
        report = classify_pending(store, factory, _now())
    finally:
        store.close()
    click.echo(f"{report.classified} item(s) classified, {report.tagged} tagged, "
               f"{report.in_scope_untagged} in scope but untagged (see `watcher untagged`); model consulted on "
               f"{report.model_consulted}" + (f"  [{report.model}]" if report.model else ""))
    if report.degraded:
        click.echo(f"model: DEGRADED, rules and identifiers only ({report.degraded}); see `watcher model`", err=True)


def _evaluate(settings: Settings, path: Path, as_json: bool, rules_only: bool) -> None:
    """Gold items are judged with the gold format's source profiles and the bundled head."""
    examples = load_gold(path)
    classifier = build_classifier(model_settings(settings, rules_only), DEFAULT_HEAD, GOLD_SOURCES)
    ids = classifier.taxonomy.ids
    report = evaluate(classifier, examples, ids)
    consulted = report.model_consulted
    baseline = evaluate(KeywordClassifier(classifier.taxonomy), examples, ids)
    described = f"{classifier.name} {classifier.full_version}"
    if as_json:
        out: dict[str, Any] = report.as_dict()
        out["baseline"] = baseline.as_dict()
        out["classifier"] = described
        out["items"] = len(examples)
        out["model_consulted"] = consulted
        out["degraded"] = classifier.degraded or ""
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(f"{len(examples)} items from {path}; classifier {described}; model consulted on {consulted}")
    click.echo(format_table(report, baseline, name=classifier.name, baseline_name="keyword baseline"))


@click.command()
@click.argument("item_id")
@click.option("--add", "add", multiple=True, help="theme to give the item (repeatable)")
@click.option("--remove", "remove", multiple=True, help="theme to take from the item (repeatable)")
@click.option("--author", default="", help="who corrects (kept with the label)")
@click.option("--note", default="", help="why (kept with the label)")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
@click.pass_context
def label(ctx: click.Context, item_id: str, add: tuple[str, ...], remove: tuple[str, ...], author: str, note: str,
          config_path: str | None) -> None:
    """Correct the themes of one item. A correction always wins over the classifier, and `watcher train` learns
    from it."""
    if not add and not remove:
        raise click.UsageError("give at least one --add THEME or --remove THEME")
    config = _config(ctx, config_path)
    known = load_themes(config.settings.themes or None).ids
    unknown = [t for t in (*add, *remove) if t not in known]
    if unknown:
        raise click.BadParameter(f"unknown theme(s) {', '.join(unknown)} (known: {', '.join(known)})")
    store = Store(config.database)
    try:
        if store.get_item(item_id) is None:
            raise click.ClickException(f"no item {item_id!r} in {config.database}")
        now = _now().isoformat()
        for theme, action in [(t, "add") for t in add] + [(t, "remove") for t in remove]:
            store.add_label(item_id, theme, action, now=now, author=author, note=note)
        themes = ", ".join(t["theme"] for t in store.themes_of(item_id)) or "(none)"
    finally:
        store.close()
    click.echo(f"{item_id}: {themes}")


@click.command()
@click.option("--gold", type=click.Path(exists=True, dir_okay=False), default=None,
              help=f"labelled file in the gold format (default: {DEV_GOLD})")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="where to write the head (default: head.npz next to the database)")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
@click.option("--rules-only", is_flag=True, help="accepted for symmetry: with the model off there is nothing to train")
@click.pass_context
def train(ctx: click.Context, gold: str | None, output: str | None, config_path: str | None,
          rules_only: bool) -> None:
    """Refit the model's head from the gold file plus every correction made with `watcher label`."""
    from classifiers.e5 import load_embedder
    from classifiers.training import merge_corrections, prepare
    from classifiers.training import train as fit

    gold_path = Path(gold) if gold else DEV_GOLD
    if not gold_path.exists():
        raise click.ClickException(f"gold file {gold_path} not found (give --gold FILE)")
    config, corrected = _corrections(ctx, config_path, output)
    settings = config.settings if config else with_env_overrides(Settings())
    if _rules_only(ctx, rules_only) or settings.model == RULES_ONLY:
        click.echo("the model is off (--rules-only or model = \"none\"): the rules need no training; nothing done")
        return
    examples = merge_corrections(load_gold(gold_path), corrected)
    embedder = load_embedder(settings.model, Path(settings.model_cache) if settings.model_cache else None,
                             precision=settings.model_precision)  # type: ignore[arg-type]
    profiles = {**GOLD_SOURCES, **(source_profiles(config) if config else {})}
    bar: Any = click.progressbar(length=len(examples), label="embedding", file=sys.stderr)
    with bar:
        data = prepare(examples, embedder, load_themes(settings.themes or None), progress=bar.update,
                       profiles=profiles)
    head = fit(data, embedder_name=f"{embedder.name} {embedder.version}")
    target = Path(output) if output else Path(config.database).with_name("head.npz") if config else Path("head.npz")
    head.save(target)
    click.echo(f"head {head.version} trained on {len(examples)} items ({len(corrected)} correction(s)) -> {target}")


def _corrections(ctx: click.Context, path: str | None, output: str | None) -> tuple[Config | None, list[Any]]:
    """The config and the store's corrected items; with --output and no config file, no corrections."""
    try:
        config = _config(ctx, path)
    except ConfigError:
        if path or not output:
            raise
        return None, []
    store = Store(config.database)
    try:
        return config, [(item_from_row(row), row.get("themes") or ()) for row in store.labelled_items()]
    finally:
        store.close()


@click.command()
@click.option("--limit", default=100, show_default=True, help="at most this many items")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
@click.pass_context
def untagged(ctx: click.Context, limit: int, config_path: str | None) -> None:
    """The recall safety net: items in scope (health ministry, CNIL, ANSM...) that got no theme."""
    store = _store(ctx, config_path)
    try:
        rows = store.untagged_in_scope(limit=limit)
    finally:
        store.close()
    for row in rows:
        click.echo(f"{row['id']}  {row['source']}  {(row['published'] or '')[:10]}  [{row['scope_reason']}]  "
                   f"{row['title'][:100]}")
    click.echo(f"{len(rows)} item(s) in scope without a theme", err=True)


@click.command("model")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--items", default=64, show_default=True, help="bundled real items in the throughput probe (max 64)")
@click.pass_context
def model(ctx: click.Context, config_path: str | None, as_json: bool, items: int) -> None:
    """The CPU, the path the theme model takes on it (backend, precision) and why, its directory, load time and
    throughput on bundled real items. Exit 1 when the model fails (classification then runs on rules alone)."""
    from classifiers.probe import model_report

    report = model_report(model_settings(_settings(ctx, config_path), _rules_only(ctx, False)), items=items)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        for line in report.lines():
            click.echo(line)
    if report.error:
        sys.exit(1)


COMMANDS = (classify, label, train, untagged, model)

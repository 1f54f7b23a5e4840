"""Theme commands: ``classify`` (pending items, or ``--eval FILE``), ``label``, ``train``, ``untagged`` and ``model``.

Thin clients of ``classifiers`` and the store, loaded only when one of them runs. ``classify --eval`` needs no
config at all; ``train`` reads its default gold file from the package folder's tests, when they are there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from watcher.cli.common import command, config_path, open_app, open_archive, rules_only, rules_only_option
from watcher.clock import now_utc
from watcher.config import Config, Settings, with_env_overrides
from watcher.errors import ConfigError

DEV_GOLD = Path(__file__).resolve().parents[2] / "tests/fixtures/gold/dev.jsonl"  # in a source checkout


def _settings() -> Settings:
    """The settings for commands that work without a config file (``classify --eval``)."""
    try:
        return open_app().config.settings
    except ConfigError:
        if config_path():
            raise
        return with_env_overrides(Settings())


@command()
@click.option("--eval", "eval_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="measure on a labelled file in the gold format instead of classifying the store")
@click.option("--json", "as_json", is_flag=True, help="with --eval: print one JSON object")
@rules_only_option
def classify(eval_file: str | None, as_json: bool) -> None:
    """Give themes to the items not classified yet (or changed), or with --eval measure the classifier."""
    if eval_file:
        _evaluate(_settings(), Path(eval_file), as_json, rules_only())
        return
    from watcher.pipeline import classify_pending

    app = open_app()
    with app.store.writer_lock():
        report = classify_pending(app.store, app.classifier_factory(), now_utc())
    click.echo(f"{report.classified} item(s) classified, {report.tagged} tagged, "
               f"{report.in_scope_untagged} in scope but untagged (see `watcher untagged`); model consulted on "
               f"{report.model_consulted}" + (f"  [{report.model}]" if report.model else ""))
    if report.degraded:
        click.echo(f"model: DEGRADED, rules and identifiers only ({report.degraded}); see `watcher model`", err=True)


def _evaluate(settings: Settings, path: Path, as_json: bool, rules_only: bool) -> None:
    """Gold items are judged with the gold format's source profiles and the bundled head."""
    from classifiers.evaluation import GOLD_SOURCES, evaluate, format_table, load_gold
    from classifiers.hybrid import DEFAULT_HEAD, build_classifier
    from classifiers.keyword import KeywordClassifier
    from watcher.app import model_settings

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


@command()
@click.argument("item_id")
@click.option("--add", "add", multiple=True, help="theme to give the item (repeatable)")
@click.option("--remove", "remove", multiple=True, help="theme to take from the item (repeatable)")
@click.option("--author", default="", help="who corrects (kept with the label)")
@click.option("--note", default="", help="why (kept with the label)")
def label(item_id: str, add: tuple[str, ...], remove: tuple[str, ...], author: str, note: str) -> None:
    """Correct the themes of one item. A correction always wins over the classifier, and `watcher train` learns
    from it."""
    if not add and not remove:
        raise click.UsageError("give at least one --add THEME or --remove THEME")
    from classifiers.themes import load_themes

    app = open_app()
    config = app.config
    known = load_themes(config.settings.themes or None).ids
    unknown = [t for t in (*add, *remove) if t not in known]
    if unknown:
        raise click.BadParameter(f"unknown theme(s) {', '.join(unknown)} (known: {', '.join(known)})")
    store = app.store
    if store.get_item(item_id) is None:
        raise click.ClickException(f"no item {item_id!r} in {config.database}")
    now = now_utc().isoformat()
    for theme, action in [(t, "add") for t in add] + [(t, "remove") for t in remove]:
        store.add_label(item_id, theme, action, now=now, author=author, note=note)
    themes = ", ".join(t["theme"] for t in store.themes_of(item_id)) or "(none)"
    click.echo(f"{item_id}: {themes}")


@command()
@click.option("--gold", type=click.Path(exists=True, dir_okay=False), default=None,
              help=f"labelled file in the gold format (default: {DEV_GOLD})")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="where to write the head (default: head.npz next to the database)")
@rules_only_option
def train(gold: str | None, output: str | None) -> None:
    """Refit the model's head from the gold file plus every correction made with `watcher label`."""
    from classifiers.e5 import load_embedder
    from classifiers.evaluation import load_gold
    from classifiers.themes import load_themes
    from classifiers.training import merge_corrections, prepare
    from classifiers.training import train as fit

    gold_path = Path(gold) if gold else DEV_GOLD
    if not gold_path.exists():
        raise click.ClickException(f"gold file {gold_path} not found (give --gold FILE)")
    config, corrected = _corrections(output)
    settings = config.settings if config else with_env_overrides(Settings())
    if rules_only() or settings.model == "none":
        click.echo("the model is off (--rules-only or model = \"none\"): the rules need no training; nothing done")
        return
    from classifiers.evaluation import GOLD_SOURCES
    from watcher.app import source_profiles

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


def _corrections(output: str | None) -> tuple[Config | None, list[Any]]:
    """The config and the store's corrected items; with --output and no config file, no corrections."""
    app = open_app()
    try:
        config = app.config
    except ConfigError:
        if config_path() or not output:
            raise
        return None, []
    from watcher.records import item_from_row

    return config, [(item_from_row(row), row.get("themes") or ()) for row in app.store.labelled_items()]


@command()
@click.option("--limit", default=100, show_default=True, help="at most this many items")
def untagged(limit: int) -> None:
    """The recall safety net: items in scope (health ministry, CNIL, ANSM...) that got no theme."""
    rows = open_archive().store.untagged_in_scope(limit=limit)
    for row in rows:
        click.echo(f"{row['id']}  {row['source']}  {(row['published'] or '')[:10]}  [{row['scope_reason']}]  "
                   f"{row['title'][:100]}")
    click.echo(f"{len(rows)} item(s) in scope without a theme", err=True)


@command("model")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--items", default=64, show_default=True, help="bundled real items in the throughput probe (max 64)")
def model(as_json: bool, items: int) -> None:
    """The CPU, the path the theme model takes on it (backend, precision) and why, its directory, load time and
    throughput on bundled real items. Exit 1 when the model fails (classification then runs on rules alone)."""
    from classifiers.probe import model_report
    from watcher.app import model_settings

    report = model_report(model_settings(_settings(), rules_only()), items=items)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        for line in report.lines():
            click.echo(line)
    if report.error:
        sys.exit(1)


COMMANDS = (classify, label, train, untagged, model)

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

from watcher.cli.common import (
    EXIT_FAILED,
    command,
    config_path,
    open_app,
    open_archive,
    rules_only,
    rules_only_option,
)
from watcher.config import Config, Settings, with_env_overrides
from watcher.util.clock import now_utc
from watcher.util.errors import ConfigError

GOLD_DIR = Path(__file__).resolve().parents[2] / "tests/fixtures/gold"  # in a source checkout
# what the shipped model is trained on: every labelled set (held-out figures come from benchmarks/bench_loso.py,
# which leaves each set and each source out in turn)
TRAINING_GOLD = ("dev.jsonl", "watcher_annotated_supplement.jsonl", "watcher_annotated_supplement2.jsonl",
                 "watcher_annotated_heldout.jsonl", "watcher_annotated_heldout2.jsonl",
                 "watcher_annotated_external.jsonl")


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
@click.option("--model-only", is_flag=True, help="with --eval: measure the embedding model alone, without the rules")
def classify(eval_file: str | None, as_json: bool, model_only: bool) -> None:
    """Give themes to the items not classified yet (or changed), or with --eval measure the classifier: rules
    only, model only and hybrid side by side with the keyword baseline (--rules-only / --model-only: one)."""
    if rules_only() and model_only:
        raise click.UsageError("--rules-only and --model-only exclude each other")
    if eval_file:
        _evaluate(_settings(), Path(eval_file), as_json, "rules" if rules_only() else "model" if model_only else "")
        return
    if model_only:
        raise click.UsageError("--model-only only measures (with --eval); the pipeline always runs the rules")
    from watcher.pipeline import classify_step

    report, error = classify_step(open_app(), now_utc())
    click.echo(f"{report.classified} item(s) classified, {report.tagged} tagged, "
               f"{report.in_scope_untagged} in scope but untagged (see `watcher untagged`); model consulted on "
               f"{report.model_consulted}" + (f"  [{report.model}]" if report.model else ""))
    if report.degraded:
        click.echo(f"model: DEGRADED, rules and identifiers only ({report.degraded}); see `watcher model`", err=True)
    if error:
        click.echo(f"classification stopped (items stay pending): {error}", err=True)
        sys.exit(EXIT_FAILED)


def _evaluate(settings: Settings, path: Path, as_json: bool, only: str) -> None:
    """The ablation table (or JSON): the keyword baseline beside rules, model and hybrid, or beside ``only``. Gold
    items are judged with the gold format's source profiles and the bundled head."""
    from classifiers.decide.hybrid import DEFAULT_HEAD, build_classifier
    from classifiers.lab import ablation
    from classifiers.lab.evaluation import GOLD_SOURCES, load_gold
    from watcher.app import model_settings

    parts = (only,) if only else ablation.PARTS
    rules = build_classifier(model_settings(settings, True), DEFAULT_HEAD, GOLD_SOURCES)
    built = build_classifier(model_settings(settings, False), DEFAULT_HEAD, GOLD_SOURCES) if only != "rules" else None
    result = ablation.run(load_gold(path), parts, rules=rules, built=built)
    if as_json:
        click.echo(json.dumps(result.as_dict(parts[-1]), ensure_ascii=False))
        return
    click.echo(f"{result.items} items from {path}; " + "; ".join(f"{p}: {v}" for p, v in result.versions.items()))
    click.echo(ablation.format_ablation(result))


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
    from classifiers.decide.themes import load_themes

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
@click.option("--gold", type=click.Path(exists=True, dir_okay=False), multiple=True,
              help="labelled file in the gold format, repeatable (default: the training sets in "
                   f"{GOLD_DIR}: {', '.join(TRAINING_GOLD)})")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="where to write the head (default: head.npz next to the database)")
@click.option("--seed", default=0, show_default=True, help="initialisation and batch order (same seed, same model)")
@click.option("--folds", default=3, show_default=True, help="cross-validation folds for the calibration of scores")
@rules_only_option
def train(gold: tuple[str, ...], output: str | None, seed: int, folds: int) -> None:
    """Fine-tune the theme model (adapters on e5-small's upper layers and a multi-label head) on the gold file(s)
    plus every correction made with `watcher label`, on CPU (about 7 minutes on 2 cores)."""
    from classifiers.decide.themes import load_themes
    from classifiers.lab.evaluation import GOLD_SOURCES, load_gold
    from classifiers.lab.training import merge_corrections
    from watcher.app import source_profiles

    paths = [Path(g) for g in gold] or [GOLD_DIR / name for name in TRAINING_GOLD]
    if not all(p.exists() for p in paths):
        raise click.ClickException(f"gold file {next(p for p in paths if not p.exists())} not found (give --gold FILE)")
    config, corrected = _corrections(output)
    settings = config.settings if config else with_env_overrides(Settings())
    if rules_only() or settings.model == "none":
        click.echo("the model is off (--rules-only or model = \"none\"): the rules need no training; nothing done")
        return
    if settings.model != "e5-small":
        raise click.ClickException(f"fine-tuning is for model = \"e5-small\", not {settings.model!r}")
    examples = merge_corrections([e for path in paths for e in load_gold(path)], corrected)
    profiles = {**GOLD_SOURCES, **(source_profiles(config) if config else {})}
    target = Path(output) if output else Path(config.database).with_name("head.npz") if config else Path("head.npz")
    trained = _fine_tune(examples, load_themes(settings.themes or None), settings, seed, folds, profiles)
    trained.head.save(target)
    click.echo(f"head {trained.head.version} ({trained.head.adapter.version if trained.head.adapter else ''}) "
               f"trained on {len(examples)} items ({len(corrected)} correction(s)) -> {target}")


def _fine_tune(examples: list[Any], taxonomy: Any, settings: Settings, seed: int, k: int, profiles: Any) -> Any:
    """Run the fine-tuning with progress on stderr; print the out-of-fold scores, the time and the peak memory."""
    import resource
    import time

    from classifiers.engine import tuning
    from classifiers.engine.convert import MODEL_DIR_NAME
    from classifiers.engine.e5 import default_cache_dir
    from classifiers.lab import finetune

    model_dir = (Path(settings.model_cache) if settings.model_cache else default_cache_dir()) / MODEL_DIR_NAME
    start = time.perf_counter()
    trained = finetune.train(examples, taxonomy, model_dir, tuning.TuneSettings(seed=seed), k=k, profiles=profiles,
                             log=lambda line: click.echo(line, err=True))
    for line in finetune.summary(trained, taxonomy.ids):
        click.echo(line)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in trained.seconds.items())
    click.echo(f"trained in {time.perf_counter() - start:.0f} s ({steps}); peak memory {peak:.0f} MB")
    return trained


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
    from classifiers.lab.probe import model_report
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

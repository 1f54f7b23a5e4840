"""The CLI as a user meets it: clean one-line errors, parse/fetch/sources/migrate/search on real files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.cli import main
from watcher.replay import DEMO_RECORDING

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures"
CONFIG = str(ROOT / "sources.toml")


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("WATCHER_DATABASE", str(tmp_path / "watcher.db"))
    return CliRunner()


def test_bad_config_is_one_clean_line(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "sources.toml"
    bad.write_text('[[source]]\nname = "x"\nkind = "rss"\nurl = "https://a.b/"\n', encoding="utf-8")
    result = runner.invoke(main, ["--config", str(bad), "sources"])
    assert result.exit_code == 2, "a configuration error is exit code 2"
    assert result.output.strip().splitlines() == [
        f"error: {bad}: [[source]] #1 (x): kind: unknown kind 'rss'; known kinds: dila-cnil, dila-jorf, feed, html, "
        "wordpress"]


def test_parse_a_real_feed_prints_one_json_object_per_item(runner: CliRunner) -> None:
    path = FIX / "cnil" / "bmeret_cnil_feed_scraped-actualite_6items_2026-06-16.xml"
    result = runner.invoke(main, ["--config", CONFIG, "parse", "--kind", "feed", str(path)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 6 and all(r["url"].startswith("https://") and r["title"] for r in rows)


def test_parse_a_real_jorf_text(runner: CliRunner) -> None:
    path = FIX / "jorf" / "jorfsimple_JORFTEXT000054246001_arrete_nomination_small.xml"
    result = runner.invoke(main, ["--config", CONFIG, "parse", "--kind", "dila-jorf", str(path)])
    (row,) = [json.loads(line) for line in result.output.splitlines()]
    assert row["id"] == "jorf:JORFTEXT000054246001" and row["nature"] == "arrete" and row["nature_raw"] == "ARRETE"
    assert row["legal_date"] == "2026-06-13"
    assert row["url"] == "https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000054246001"


def test_parse_unknown_kind(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--config", CONFIG, "parse", "--kind", "pdf", CONFIG])
    assert result.exit_code == 2 and "unknown kind 'pdf'" in result.output


def test_fetch_dry_run_stores_nothing_then_fetch_and_sources_table(runner: CliRunner, tmp_path: Path) -> None:
    replay = ["--config", CONFIG, "--replay", str(DEMO_RECORDING)]
    dry = runner.invoke(main, [*replay, "fetch", "--dry-run", "--source", "edpb"])
    assert dry.exit_code == 0, dry.output
    assert len([line for line in dry.output.splitlines() if line.startswith("{")]) == 10
    from store import Store

    assert Store(tmp_path / "watcher.db").count_items("edpb") == 0, "a dry run stores nothing"
    fetched = runner.invoke(main, [*replay, "fetch", "--source", "edpb", "--source", "eurlex-oj"])
    assert "edpb" in fetched.output and "FAILED" in fetched.output and "bot wall" in fetched.output
    assert fetched.exit_code == 1, "a failed source is exit code 1, after the others are stored"
    table = runner.invoke(main, [*replay, "sources"]).output
    edpb_line = next(line for line in table.splitlines() if line.startswith("edpb"))
    eurlex_line = next(line for line in table.splitlines() if line.startswith("eurlex-oj"))
    assert " ok " in edpb_line and " 10 " in edpb_line
    assert "degraded" in eurlex_line and "1x empty 202" in eurlex_line
    found = runner.invoke(main, [*replay, "search", "guidelines"])
    assert found.exit_code == 0 and "edpb" in found.output


def test_migrate_reports_what_it_applied(runner: CliRunner) -> None:
    first = runner.invoke(main, ["--config", CONFIG, "migrate"])
    assert "applied m001_items, m002_sources, m003_themes" in first.output
    assert "up to date" in runner.invoke(main, ["--config", CONFIG, "migrate"]).output


def test_parse_prints_identifiers_as_objects(runner: CliRunner) -> None:
    path = FIX / "jorf" / "jorfsimple_JORFTEXT000054245373_arrete_catnat_large_600KB.xml"
    result = runner.invoke(main, ["--config", CONFIG, "parse", "--kind", "dila-jorf", str(path)])
    (row,) = [json.loads(line) for line in result.output.splitlines()]
    assert row["identifiers"]["jorftext"] == "JORFTEXT000054245373" and isinstance(row["tags"], list)


def test_record_saves_bytes_status_and_headers_for_replay(runner: CliRunner, tmp_path: Path) -> None:
    from watcher.replay import load_recording

    out = tmp_path / "recordings"
    result = runner.invoke(main, ["--config", CONFIG, "--replay", str(DEMO_RECORDING), "record", "--out", str(out),
                                  "--source", "edpb", "--source", "eurlex-oj"])
    assert result.exit_code == 0, result.output
    assert "https://www.edpb.europa.eu/feed/news_en: 200" in result.output
    assert "https://eur-lex.europa.eu/FR/display-feed.rss?rssId=222: 202" in result.output
    recorded = load_recording(out)
    assert set(recorded) == {"https://www.edpb.europa.eu/feed/news_en",
                             "https://eur-lex.europa.eu/FR/display-feed.rss?rssId=222"}
    replayed = runner.invoke(main, ["--config", CONFIG, "--replay", str(out), "fetch", "--dry-run", "--source", "edpb"])
    assert len([line for line in replayed.output.splitlines() if line.startswith("{")]) == 10


def test_every_command_comes_from_an_area_module_and_takes_config(runner: CliRunner) -> None:
    from watcher.cli import AREAS

    names = [c.name for area in AREAS for c in area.COMMANDS]
    assert len(names) == len(set(names)) and set(names) == set(main.commands)
    listing = runner.invoke(main, ["--help"])
    assert listing.exit_code == 0 and all(f"  {name} " in listing.output for name in names)
    for name in names:
        helped = runner.invoke(main, [name, "--help"])
        assert helped.exit_code == 0 and "--config FILE" in helped.output, name


def test_a_command_s_own_config_wins_over_the_group_s(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[settings]\nnope = 1\n", encoding="utf-8")
    good = runner.invoke(main, ["--config", str(bad), "sources", "--config", CONFIG])
    assert "unknown setting" not in good.output and "no archive at" in good.output  # the command's config was read
    failed = runner.invoke(main, ["--config", CONFIG, "sources", "--config", str(bad)])
    assert failed.exit_code == 2 and "unknown setting(s) nope" in failed.output


def test_a_storage_error_is_one_line_and_exit_code_3(runner: CliRunner, tmp_path: Path) -> None:
    from store import StoreError
    from watcher.cli.common import EXIT_STORAGE, exit_code
    from watcher.util.errors import ConfigError, SourceError

    errors = (ConfigError("x"), StoreError("w.db", "x"), SourceError("s", "x"))
    assert [exit_code(e) for e in errors] == [2, EXIT_STORAGE, 1]


def test_heavy_areas_are_loaded_only_when_one_of_their_commands_runs(runner: CliRunner) -> None:
    helped = runner.invoke(main, ["digest", "--help"])
    assert helped.exit_code == 0 and "--weekly" in helped.output
    code = ("import sys, watcher.cli; "
            "print(sorted(m for m in ('watcher.notify', 'classifiers.decide.hybrid', 'jinja2') "
            "if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_python_m_watcher_is_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "watcher", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("watcher, version")


def test_parse_html_without_a_source_names_the_sources_whose_selectors_it_needs(runner: CliRunner) -> None:
    """It used to end in a selectolax traceback (an empty CSS selector)."""
    path = FIX / "health_data_hub" / "hdh_listing_bibliotheque-algorithmes_page0.html"
    result = runner.invoke(main, ["--config", CONFIG, "parse", "--kind", "html", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "error: --kind html needs the keys item_selector, title_selector, link_selector of a configured source: "
        "add --source NAME (html sources in the config: health-data-hub)"]
    with_source = runner.invoke(main, ["--config", CONFIG, "parse", "--kind", "html", "--source", "health-data-hub",
                                       str(path)])
    assert with_source.exit_code == 0, with_source.output
    assert len(with_source.output.splitlines()) > 1


def test_parse_with_a_source_of_another_kind_says_so(runner: CliRunner) -> None:
    path = FIX / "jorf" / "jorfsimple_JORFTEXT000054246001_arrete_nomination_small.xml"
    result = runner.invoke(main, ["--config", CONFIG, "parse", "--kind", "dila-jorf", "--source", "health-data-hub",
                                  str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: --kind dila-jorf, but source 'health-data-hub' is of kind html"]


def test_demo_runs_with_the_rules_only(runner: CliRunner, tmp_path: Path) -> None:
    """`--rules-only` reaches every classifying command; the demo never loads the model with it."""
    result = runner.invoke(main, ["--config", CONFIG, "--rules-only", "demo",
                                  "--workdir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert re.search(r"model consulted on 0 \[hybrid rules-\d+\]", result.output) and "DEGRADED" not in result.output

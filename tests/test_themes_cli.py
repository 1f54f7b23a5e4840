"""The theme commands: classify --eval (text and JSON), classify the store, label, untagged, train."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from store import Store
from watcher.cli.themes import COMMANDS, classify, label, train, untagged
from watcher.models import Item
from watcher.records import item_to_row

THEMES = {"health-data", "ai", "dmuu-reprocessing", "personal-data", "health-products"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text('[settings]\ndatabase = "archive.db"\n\n[[source]]\nname = "cnil"\nkind = "feed"\n'
                    'url = "https://www.cnil.fr/fr/rss.xml"\npublisher = "CNIL"\ndefault_theme = "personal-data"\n'
                    'legal = true\n', encoding="utf-8")
    store = Store(tmp_path / "archive.db")
    items = [Item(id="nomination", source="cnil", url="https://cnil.fr/fr/n", title="M. X est nommé à la CNIL"),
             Item(id="guide", source="cnil", url="https://cnil.fr/fr/g", title="La CNIL publie un guide RGPD"),
             Item(id="off", source="other", url="https://example.org", title="Flash conjoncture")]
    store.upsert_items([item_to_row(i) for i in items], now="2026-06-01T00:00:00+00:00")
    store.close()
    return path


def test_eval_json_has_the_documented_shape_and_beats_the_baseline(fixtures_dir: Path):
    gold = fixtures_dir / "gold" / "dev.jsonl"
    result = CliRunner().invoke(classify, ["--eval", str(gold), "--json", "--rules-only"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out["themes"]) == THEMES and set(out["baseline"]["themes"]) == THEMES
    for block in (out, out["baseline"]):
        assert isinstance(block["macro_f1"], float)
        for scores in block["themes"].values():
            assert set(scores) == {"precision", "recall", "f1", "support"}
    assert out["themes"]["ai"]["support"] == 31 and out["themes"]["dmuu-reprocessing"]["support"] == 0
    assert out["macro_f1"] > out["baseline"]["macro_f1"] + 0.1


def test_eval_prints_a_side_by_side_table(fixtures_dir: Path):
    result = CliRunner().invoke(classify, ["--eval", str(fixtures_dir / "gold" / "dev.jsonl"), "--rules-only"])
    assert result.exit_code == 0 and "keyword baseline" in result.output and "macro-F1" in result.output


def test_classify_the_store_then_list_the_safety_net_and_correct(config: Path):
    runner = CliRunner()
    result = runner.invoke(classify, ["--config", str(config), "--rules-only"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("3 item(s) classified, 1 tagged, 1 in scope but untagged")
    listed = runner.invoke(untagged, ["--config", str(config)])
    assert "nomination" in listed.output and "[source: CNIL]" in listed.output
    fixed = runner.invoke(label, ["nomination", "--add", "personal-data", "--config", str(config)])
    assert fixed.exit_code == 0 and fixed.output.strip() == "nomination: personal-data"
    assert "nomination" not in runner.invoke(untagged, ["--config", str(config)]).output
    again = runner.invoke(classify, ["--config", str(config), "--rules-only"])
    assert again.output.startswith("0 item(s) classified")


@pytest.mark.parametrize("args, message", [
    (["guide", "--add", "cooking"], "unknown theme"),
    (["missing", "--add", "ai"], "no item 'missing'"),
    (["guide"], "at least one"),
])
def test_label_errors(config: Path, args: list[str], message: str):
    result = CliRunner().invoke(label, [*args, "--config", str(config)])
    assert result.exit_code != 0 and message in result.output


def test_train_with_the_model_off_does_nothing(config: Path) -> None:
    """(Fine-tuning end to end, with a correction from the store: tests/test_finetune.py.)"""
    result = CliRunner().invoke(train, ["--config", str(config), "--rules-only"])
    assert result.exit_code == 0 and "the rules need no training; nothing done" in result.output


def test_every_command_is_a_click_command_with_help():
    for command in COMMANDS:
        assert isinstance(command, click.Command) and command.help
        assert "--config" in {opt for p in command.params for opt in p.opts}

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


NEW_THEME = '''
[[theme]]
id = "cybersecurity"
label_fr = "Cybersécurité"
label_en = "Cybersecurity"
description_fr = "Sécurité des systèmes d'information : NIS 2, rançongiciels, incidents, ANSSI."
description_en = "Security of information systems: NIS 2, ransomware, incidents."
keywords = ["cybersécurité"]

[[theme.rule]]
label = "cybersécurité"
words = ["cybersécurité", "rançongiciel", "rançongiciels", "ransomware"]

[[theme.act]]
ref = "directive (UE) 2022/2555"
name = "NIS 2"
'''


def _with_themes(config: Path, themes: str) -> Path:
    """The config with ``[settings] themes`` pointing at a copy of the bundled themes file plus ``themes``."""
    from classifiers.decide.themes import DEFAULT_THEMES

    path = config.parent / "my-themes.toml"
    path.write_text(DEFAULT_THEMES.read_text(encoding="utf-8") + themes, encoding="utf-8")
    config.write_text(config.read_text(encoding="utf-8").replace(
        '[settings]\n', f'[settings]\nthemes = "{path}"\n'), encoding="utf-8")
    return path


def test_a_theme_added_to_the_themes_file_is_tagged_by_the_rules_with_no_code_change(config: Path):
    _with_themes(config, NEW_THEME)
    store = Store(config.parent / "archive.db")
    items = [Item(id="ransom", source="other", url="https://example.org/r",
                  title="Rançongiciels : l'ANSSI publie un guide pour les hôpitaux"),
             Item(id="nis2", source="other", url="https://example.org/n", title="Texte n° 12",
                  summary="portant transposition de la directive (UE) 2022/2555")]
    store.upsert_items([item_to_row(i) for i in items], now="2026-06-01T00:00:00+00:00")
    store.close()
    result = CliRunner().invoke(classify, ["--config", str(config), "--rules-only"])
    assert result.exit_code == 0, result.output
    store = Store(config.parent / "archive.db")
    ransom, nis2 = store.themes_of("ransom"), store.themes_of("nis2")
    assert [t["theme"] for t in ransom] == ["cybersecurity"] and "matched: cybersécurité" in ransom[0]["reason"]
    assert [t["theme"] for t in nis2] == ["cybersecurity"]
    assert nis2[0]["reason"].startswith("cite la directive (UE) 2022/2555 (NIS 2)")


@pytest.mark.parametrize("themes, message", [
    ("\n[[theme]]\nid = \"x\"\n", "label_fr"),
    (NEW_THEME.replace('ref = "directive (UE) 2022/2555"', 'ref = "arrêté du 4 février 2026"'), "only a date"),
    (NEW_THEME.replace('\nwords = [', '\nregex = "x"\nwords = ['), "exactly one of regex"),
    (NEW_THEME.replace('words = ["cybersécurité", "rançongiciel", "rançongiciels", "ransomware"]',
                       'regex = "(unclosed"'), "not a valid regular expression"),
])
def test_a_malformed_themes_file_is_a_one_line_config_error(config: Path, themes: str, message: str):
    path = _with_themes(config, themes)
    result = CliRunner().invoke(classify, ["--config", str(config), "--rules-only"])
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and message in line and str(path) in line

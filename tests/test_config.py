"""sources.toml validation: every error names the file, the table and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.app import checked_config
from watcher.config import SETTINGS, Settings, load_config
from watcher.util.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_bundled_sources_toml_is_valid() -> None:
    config = load_config(ROOT / "sources.toml")
    kinds = {s.kind for s in config.sources}
    assert {"dila-jorf", "dila-cnil", "feed", "wordpress", "html"} <= kinds
    names = {s.name for s in config.sources}
    assert {"jorf", "cnil", "cnil-deliberations", "ansm-actualites", "ansm-securite", "vigier-avocats",
            "health-data-hub", "edpb", "eurlex-oj"} <= names
    assert len([s for s in config.sources if s.kind == "wordpress"]) >= 4


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[source]]\nname="x"\nkind="nope"\nurl="https://a.b/"', "key: unknown kind 'nope'"),
        ('[[source]]\nname="x"\nkind="feed"\nurl="https://a.b/"\ncolour="red"', "(x): colour: unknown key for kind feed"),
        ('[[source]]\nname="x"\nkind="feed"', "url: missing or empty"),
        ('[[source]]\nname="x"\nkind="feed"\nurl="ftp://a.b/"', "url: must be an http(s) URL"),
        ('[[source]]\nname="x"\nkind="feed"\nurl="https://a.b/"\ninterval="often"', "interval: interval must look like"),
        ('[[source]]\nname="x"\nkind="html"\nurl="https://a.b/"', "required by kind html"),
        ('[settings]\ntimeout="slow"', "[settings]: timeout: expected float"),
        ('[settings]\ncolour=1', "[settings]: colour: unknown setting"),
        ('[[source]]\nname="x"\nkind="feed"\nurl="https://a.b/"\n[[source]]\nname="x"\nkind="feed"\nurl="https://c.d/"',
         "duplicate source name(s): x"),
        ("[[source]\nname=", "not valid TOML"),
        ('[settings]\nmodel_precision="fp16"', "[settings]: model_precision: must be one of auto, float32, bfloat16"),
        ('[[source]]\nname="x"\nkind="feed"\nurl="https://a.b/"\nlegal="yes"', "(x): legal: must be true or false"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        checked_config(path)  # what the commands read: load_config plus the registries' checks
    assert str(path) in str(info.value) and message.replace("key: ", "kind: ") in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_settings_table_and_dataclass_agree_and_are_documented() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8") + (ROOT / "docs" / "configuration.md").read_text(
        encoding="utf-8")
    for setting in SETTINGS:
        assert hasattr(Settings(), setting.name)
        assert f"`{setting.name}`" in readme, f"setting {setting.name} is not documented"


def test_every_kind_key_is_documented() -> None:
    from watcher.sources import KINDS

    docs = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for kind in KINDS.values():
        assert f"`{kind.kind}`" in docs
        for key in {**kind.required, **kind.optional}:
            assert f"`{key}`" in docs, f"key {key} of kind {kind.kind} is not documented"


def test_configuration_reference_is_regenerated() -> None:
    from watcher.docs import configuration_markdown

    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == configuration_markdown(), "run `watcher docs` and commit docs/configuration.md"


def test_model_precision_setting_and_its_environment_override(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, '[settings]\nmodel_precision = "bfloat16"\n')
    monkeypatch.delenv("WATCHER_MODEL_PRECISION", raising=False)
    assert load_config(path).settings.model_precision == "bfloat16"
    monkeypatch.setenv("WATCHER_MODEL_PRECISION", "float32")
    assert load_config(path).settings.model_precision == "float32"
    monkeypatch.setenv("WATCHER_MODEL_PRECISION", "fast")
    with pytest.raises(ConfigError, match="WATCHER_MODEL_PRECISION must be one of auto, float32, bfloat16"):
        load_config(path)


def test_an_unknown_default_theme_is_an_error_naming_the_source(tmp_path: Path) -> None:
    from watcher.app import source_profiles

    path = _write(tmp_path, '[[source]]\nname="x"\nkind="feed"\nurl="https://a.b/"\ndefault_theme="privacy"\n')
    with pytest.raises(ConfigError, match=r"\(x\): default_theme: unknown theme 'privacy'"):
        source_profiles(load_config(path))

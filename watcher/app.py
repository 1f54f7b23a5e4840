"""The composition root: the objects one command needs, built once and lazily (config, store, HTTP client,
classifier). The configuration is checked here against the registries (kinds of source, kinds of channel, themes),
which ``watcher.config`` does not import."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from classifiers.decide.base import Classifier
from store import Store
from store.lock import DEFAULT_WAIT
from watcher.config import Config, Settings, check_config, load_config
from watcher.http import HttpClient, build_client
from watcher.util.errors import ConfigError

if TYPE_CHECKING:  # the classifier modules load only when something is classified
    from classifiers.decide.hybrid import ModelSettings
    from classifiers.decide.rules import SourceProfile


class App:
    def __init__(self, config_path: str | Path | None = None, *, database: str | Path | None = None,
                 url_map: Callable[[str], str] | None = None, host_delay: float | None = None,
                 lock_wait: float = DEFAULT_WAIT, on_wait: Callable[[str], None] | None = None,
                 rules_only: bool = False):
        self.config_path = config_path
        self.lock_wait, self.on_wait = lock_wait, on_wait
        self.rules_only = rules_only
        self._database = database
        self._url_map = url_map
        self._host_delay = host_delay

    @cached_property
    def config(self) -> Config:
        config = checked_config(self.config_path)
        if self._database is not None:
            config = replace(config, settings=replace(config.settings, database=str(Path(self._database).resolve())))
        if self._host_delay is not None:
            config = replace(config, settings=replace(config.settings, host_delay=self._host_delay))
        return config

    @cached_property
    def store(self) -> Store:
        """The archive, opened for writing (commands that write hold ``store.writer_lock()`` while they do)."""
        return Store(self.config.database, lock_wait=self.lock_wait, on_wait=self.on_wait)

    @cached_property
    def reader(self) -> Store:
        """The archive opened read-only, for the commands that only read: never waits for a writer."""
        return Store.open_readonly(self.config.database)

    @cached_property
    def http(self) -> HttpClient:
        return build_client(self.config.settings, url_map=self._url_map)

    def classifier_factory(self) -> Callable[[], Classifier]:
        """Builds the theme classifier (and checks each source's ``default_theme`` against the taxonomy)."""
        from classifiers.decide.hybrid import build_classifier, head_path

        config, rules_only = self.config, self.rules_only
        return lambda: build_classifier(model_settings(config.settings, rules_only), head_path(config.database),
                                        source_profiles(config))

    def close(self) -> None:
        if "http" in self.__dict__:
            self.http.close()
        for name in ("store", "reader"):
            if name in self.__dict__:
                self.__dict__[name].close()


def checked_config(path: str | Path | None) -> Config:
    """``load_config`` plus the checks only the registries can make. The notification stack and the taxonomy are
    loaded only when the file declares channels or subscriptions."""
    from watcher.sources import KINDS

    config = load_config(path)
    channel_kinds: dict = {}
    themes: tuple[str, ...] = ()
    if config.alerts.channels:
        from watcher.notify import CHANNELS

        channel_kinds = CHANNELS
    if config.alerts.subscriptions:
        from classifiers.decide.themes import load_themes

        themes = tuple(load_themes(config.settings.themes or None).ids)
    return check_config(config, source_kinds=KINDS, channel_kinds=channel_kinds, themes=themes)


def model_settings(settings: Settings, rules_only: bool = False) -> ModelSettings:
    """The classifier's slice of the settings; ``rules_only`` (``--rules-only``) turns the model off."""
    from classifiers.decide.hybrid import RULES_ONLY, ModelSettings
    return ModelSettings(model=RULES_ONLY if rules_only else settings.model, model_cache=settings.model_cache,
                         model_precision=settings.model_precision, themes=settings.themes)


def source_profiles(config: Config) -> dict[str, SourceProfile]:
    """What the rules know of each configured source (``default_theme``, ``legal``), checked against the themes."""
    from classifiers.decide.rules import SourceProfile
    from classifiers.decide.themes import load_themes

    known = load_themes(config.settings.themes or None).ids
    for source in config.sources:
        if source.default_theme and source.default_theme not in known:
            raise ConfigError(f"unknown theme {source.default_theme!r} (known: {', '.join(known)})",
                              file=str(config.path), table=f"[[source]] ({source.name})", key="default_theme")
    return {s.name: SourceProfile(s.publisher or s.label or s.name, s.default_theme, s.legal) for s in config.sources}

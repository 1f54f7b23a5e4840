"""The objects one command needs, built once and lazily: config, store, HTTP client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cached_property
from pathlib import Path

from classifiers.base import Classifier
from store import Store
from watcher.config import Config, load_config
from watcher.http import HttpClient, build_client


class App:
    def __init__(self, config_path: str | Path | None = None, *, database: str | Path | None = None,
                 url_map: Callable[[str], str] | None = None, host_delay: float | None = None):
        self.config_path = config_path
        self._database = database
        self._url_map = url_map
        self._host_delay = host_delay

    @cached_property
    def config(self) -> Config:
        config = load_config(self.config_path)
        if self._database is not None:
            config = replace(config, settings=replace(config.settings, database=str(Path(self._database).resolve())))
        if self._host_delay is not None:
            config = replace(config, settings=replace(config.settings, host_delay=self._host_delay))
        return config

    @cached_property
    def store(self) -> Store:
        return Store(self.config.database)

    @cached_property
    def http(self) -> HttpClient:
        return build_client(self.config.settings, url_map=self._url_map)

    def classifier_factory(self) -> Callable[[], Classifier]:
        from classifiers.hybrid import build_classifier

        settings = self.config.settings
        return lambda: build_classifier(settings, store=self.store)

    def close(self) -> None:
        if "http" in self.__dict__:
            self.http.close()
        if "store" in self.__dict__:
            self.store.close()

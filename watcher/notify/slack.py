"""Slack through an incoming webhook (the URL is a secret): one Block Kit message per delivery."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from watcher.config.alerts import ChannelConfig
from watcher.notify.base import Channel, Message, mask
from watcher.util.errors import ConfigError, NotifyError


class SlackChannel(Channel):
    kind: ClassVar[str] = "slack"
    optional: ClassVar[dict[str, str]] = {
        "timeout": "seconds allowed for the webhook call (default 15)",
        "username": "name shown as the poster (legacy webhooks only)",
    }
    secrets: ClassVar[dict[str, str]] = {"webhook": "incoming webhook URL (https://hooks.slack.com/services/...)"}
    required_secrets: ClassVar[tuple[str, ...]] = ("webhook",)
    needs: ClassVar[frozenset[str]] = frozenset({"slack"})

    def __init__(self, config: ChannelConfig, secrets: Mapping[str, str], *, client: httpx.Client | None = None):
        super().__init__(config, secrets)
        self.webhook = self._secrets["webhook"]
        if not self.webhook.startswith(("https://", "http://")):
            raise ConfigError(f"the webhook must be an http(s) URL, not {mask(self.webhook)}", file=config.file,
                              table=config.table, key="webhook_env")
        self._client = client

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> tuple[str, str] | None:
        if not isinstance(options.get("timeout", 15), (int, float)):
            return "timeout", "must be a number of seconds"
        return None

    def payload(self, message: Message) -> dict[str, Any]:
        body: dict[str, Any] = dict(message.slack)
        if message.slack_target:
            body["channel"] = message.slack_target
        if self.option("username"):
            body["username"] = self.option("username")
        return body

    def send(self, message: Message) -> None:
        client = self._client or httpx.Client(timeout=float(self.option("timeout", 15)))
        self._client = client
        try:
            response = client.post(self.webhook, json=self.payload(message))
        except httpx.TransportError as exc:  # connection refused, reset, timed out: the webhook is down
            raise NotifyError(self.name, f"cannot reach {mask(self.webhook)}: {type(exc).__name__}",
                              down="connection") from None
        except httpx.HTTPError as exc:
            raise NotifyError(self.name, f"cannot reach {mask(self.webhook)}: {type(exc).__name__}") from None
        if response.status_code < 300:
            return
        detail = response.text[:200].strip()
        if response.status_code == 429:
            raise NotifyError(self.name, f"rate limited (429) {detail}",
                              retry_after=_seconds(response.headers.get("retry-after")))
        raise NotifyError(self.name, f"HTTP {response.status_code} {detail}".strip(),
                          permanent=response.status_code < 500 and response.status_code != 408)

    def abort(self) -> None:
        """Close the client from another thread: a call still waiting fails with a transport error."""
        if self._client is not None:
            self._client.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None

"""Alerts: channels by kind (an explicit registry), planning, rendering and the delivery ledger's sender.

    CHANNELS            kind -> channel class (email, slack, apprise); no import-time side effects
    build_channel       a channel from its ``ChannelConfig`` (reads its secrets from the environment then)
    plan_deliveries     who gets what: matches new themes against subscriptions, opens due digests
    send_due            sends what is due, records each outcome in the ledger, recovers interrupted sends
"""

from __future__ import annotations

from collections.abc import Iterable

from watcher.config.alerts import AlertsConfig, ChannelConfig
from watcher.notify.apprise_channel import AppriseChannel
from watcher.notify.base import Channel, Message, mask
from watcher.notify.deliver import DeliveryReport, send_due
from watcher.notify.email import EmailChannel
from watcher.notify.plan import plan_deliveries
from watcher.notify.slack import SlackChannel
from watcher.util.errors import WatcherError

CHANNELS: dict[str, type[Channel]] = {cls.kind: cls for cls in (EmailChannel, SlackChannel, AppriseChannel)}


def build_channel(config: ChannelConfig) -> Channel:
    return CHANNELS[config.kind](config, config.secrets())


def open_channels(alerts: AlertsConfig, names: Iterable[str] | None = None) -> tuple[dict[str, Channel],
                                                                                      dict[str, str]]:
    """The channels that can be built, and why the others cannot (e.g. a secret's variable is not set)."""
    channels: dict[str, Channel] = {}
    problems: dict[str, str] = {}
    for name in sorted(set(names) if names is not None else alerts.channels):
        try:
            channels[name] = build_channel(alerts.channel(name))
        except WatcherError as exc:
            problems[name] = str(exc)
    return channels, problems


__all__ = ["CHANNELS", "Channel", "DeliveryReport", "Message", "build_channel", "mask", "open_channels",
           "plan_deliveries", "send_due"]

"""Any service apprise supports: the apprise URL (it carries credentials) is a secret read from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from watcher.notify.base import Channel, Message, mask
from watcher.util.errors import NotifyError

FORMATS = ("text", "html", "markdown")


class AppriseChannel(Channel):
    kind: ClassVar[str] = "apprise"
    optional: ClassVar[dict[str, str]] = {"format": "body sent: text (default), html or markdown (the text part)"}
    secrets: ClassVar[dict[str, str]] = {"url": "apprise URL, e.g. tgram://bottoken/ChatID or mailtos://..."}
    required_secrets: ClassVar[tuple[str, ...]] = ("url",)

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> tuple[str, str] | None:
        if options.get("format", "text") not in FORMATS:
            return "format", f"must be one of {', '.join(FORMATS)}"
        return None

    def send(self, message: Message) -> None:
        import apprise  # heavy: imported when a message is actually sent

        notifier = apprise.Apprise()
        if not notifier.add(self._secrets["url"]):
            raise NotifyError(self.name, f"apprise does not understand the URL {mask(self._secrets['url'])}",
                              permanent=True)
        fmt = self.option("format", "text")
        body = message.html if fmt == "html" else message.text
        # apprise answers only yes or no; its log says whether the service could not be reached (refused, reset,
        # timed out), which is what the run's circuit breaker counts, as for SMTP and Slack
        with apprise.LogCapture(level=apprise.logging.WARNING) as log:
            sent = notifier.notify(body=body, title=message.subject,
                                   body_format=getattr(apprise.NotifyFormat, fmt.upper()))
        if not sent:
            said = log.getvalue().lower()
            down = "connection" if any(w in said for w in ("connection error", "timed out", "timeout")) else ""
            raise NotifyError(self.name, f"apprise could not notify {mask(self._secrets['url'])}"
                              + (" (unreachable or no answer)" if down else ""), down=down)

"""E-mail by SMTP (STARTTLS, SSL or plain; optional login), multipart text + HTML, one connection per batch."""

from __future__ import annotations

import binascii
import smtplib
import ssl
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import quote

from watcher.errors import NotifyError
from watcher.notify.base import Channel, Message

SECURITY = ("starttls", "ssl", "plain")
_PORTS = {"starttls": 587, "ssl": 465, "plain": 25}


class EmailChannel(Channel):
    kind: ClassVar[str] = "email"
    required: ClassVar[dict[str, str]] = {"host": "SMTP server name", "from": "sender address, e.g. veille@cabinet.fr"}
    optional: ClassVar[dict[str, str]] = {
        "port": "SMTP port (default 587 for starttls, 465 for ssl, 25 for plain)",
        "security": "starttls (default), ssl or plain",
        "username": "login, if the server wants one (the password comes from password_env)",
        "from_name": "display name of the sender (default 'Veille juridique')",
        "reply_to": "Reply-To address",
        "unsubscribe": "unsubscribe link shown in every message and sent as List-Unsubscribe: an https: URL (may "
                       "contain {email}; RFC 8058 one-click is announced for it) or a mailto: address "
                       "(default mailto:<from>?subject=desabonnement)",
        "timeout": "seconds allowed for each SMTP step (default 30)",
        "ca_file": "PEM file of the certificate authority to trust (an internal relay); default: the system's",
    }
    secrets: ClassVar[dict[str, str]] = {"password": "SMTP password"}
    dedups_by_message_id: ClassVar[bool] = True

    def __init__(self, config: Any, secrets: Mapping[str, str]):
        super().__init__(config, secrets)
        self._smtp: smtplib.SMTP | None = None

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> tuple[str, str] | None:
        if options.get("security", "starttls") not in SECURITY:
            return "security", f"must be one of {', '.join(SECURITY)}"
        port = options.get("port", 1)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            return "port", "must be a port number"
        if "@" not in str(options.get("from", "@")):
            return "from", "must be an e-mail address"
        if not isinstance(options.get("timeout", 30), (int, float)):
            return "timeout", "must be a number of seconds"
        return None

    @property
    def sender(self) -> str:
        return str(self.option("from"))

    def message_id(self, key: str) -> str:
        return f"<watcher.{key}@{self.sender.rpartition('@')[2]}>"

    def build(self, message: Message) -> bytes:
        """The whole e-mail: headers folded and encoded by the email package, then a multipart/alternative body
        (text and HTML, quoted-printable) assembled directly -- the email package's generator takes tens of
        milliseconds to write a long digest line by line, this takes one."""
        head = EmailMessage(policy=SMTP)
        head["From"] = Address(self.option("from_name", "Veille juridique"), addr_spec=self.sender)
        head["To"] = Address(message.person, addr_spec=message.email)
        head["Subject"] = message.subject
        head["Message-ID"] = self.message_id(message.key)
        if message.date is not None:
            head["Date"] = format_datetime(message.date)
        if self.option("reply_to"):
            head["Reply-To"] = self.option("reply_to")
        link = message.unsubscribe or self.unsubscribe_for(message.email)
        mailto = f"mailto:{self.sender}?subject=desabonnement"
        if link.startswith("https://"):  # RFC 8058: a POST to the https URL unsubscribes, no page to confirm
            head["List-Unsubscribe"] = f"<{link}>, <{mailto}>"
            head["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        else:
            head["List-Unsubscribe"] = f"<{link or mailto}>"
        head["Auto-Submitted"] = "auto-generated"
        for name, value in message.headers.items():
            head[name] = value
        boundary = f"==watcher-{message.key}=="
        head["MIME-Version"] = "1.0"
        head["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
        headers = bytes(head).split(b"\r\n\r\n", 1)[0]
        parts = [_part(boundary, "plain", message.text), _part(boundary, "html", message.html)]
        return headers + b"\r\n\r\n" + b"".join(parts) + f"--{boundary}--\r\n".encode()

    def unsubscribe_for(self, email: str) -> str:
        """The channel's ``unsubscribe`` link for ``email`` ({email} filled in, URL-encoded), else a mailto:."""
        link = str(self.option("unsubscribe") or f"mailto:{self.sender}?subject=desabonnement")
        return link.replace("{email}", quote(email, safe="")) if link.startswith("https://") else link

    def send(self, message: Message) -> None:
        if not message.email:
            raise NotifyError(self.name, f"no e-mail address for {message.person}", permanent=True)
        mail = self.build(message)
        try:
            self._connection().sendmail(self.sender, [message.email], mail)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            code, text = next(iter(exc.recipients.values()))
            raise _smtp_error(self.name, code, text) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise _smtp_error(self.name, exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPNotSupportedError as exc:
            self.close()
            raise NotifyError(self.name, f"server does not support it: {exc}", permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise NotifyError(self.name, f"cannot reach {self._where()}: {exc or type(exc).__name__}") from None

    def _where(self) -> str:
        return f"{self.option('host')}:{self._port()}"

    def _port(self) -> int:
        return int(self.option("port", _PORTS[self.option("security", "starttls")]))

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            try:
                if self._smtp.noop()[0] == 250:
                    return self._smtp
            except (smtplib.SMTPException, OSError):
                pass
            self.close()
        self._smtp = self._connect()
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        security, timeout = self.option("security", "starttls"), float(self.option("timeout", 30))
        host, port = str(self.option("host")), self._port()
        smtp: smtplib.SMTP
        context = ssl.create_default_context(cafile=self.option("ca_file") or None)
        if security == "ssl":
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        try:
            if security == "starttls":
                smtp.starttls(context=context)
            if self.option("username"):
                smtp.login(str(self.option("username")), self._secrets.get("password", ""))
        except BaseException:
            smtp.close()
            raise
        return smtp

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


def _part(boundary: str, subtype: str, text: str) -> bytes:
    """One quoted-printable part (binascii's C encoder: readable, ~5 % larger than the text, lines <= 76)."""
    body = binascii.b2a_qp("\n".join(text.splitlines()).encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return (f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + body + b"\r\n"


def _smtp_error(channel: str, code: int, text: bytes | str) -> NotifyError:
    reason = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return NotifyError(channel, f"SMTP {code} {reason}".strip(), permanent=500 <= code < 600)

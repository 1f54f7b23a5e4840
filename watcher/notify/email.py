"""E-mail by SMTP (STARTTLS, SSL or plain; optional login), multipart text + HTML, one connection per batch."""

from __future__ import annotations

import binascii
import contextlib
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import quote

from watcher.notify.base import Channel, Message
from watcher.util.errors import NotifyError

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
        self._opening: smtplib.SMTP | None = None

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
        # written as they are (RFC 2369): the email package would RFC 2047-encode a URL longer than a line, and
        # mail clients would no longer find it
        unsubscribe = [b"List-Unsubscribe: " + b",\r\n ".join(f"<{_header_uri(u)}>".encode("ascii")
                                                                for u in ([link, mailto] if link.startswith("https://")
                                                                          else [link or mailto]))]
        if link.startswith("https://"):  # RFC 8058: a POST to the https URL unsubscribes, no page to confirm
            unsubscribe.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        head["Auto-Submitted"] = "auto-generated"
        for name, value in message.headers.items():
            head[name] = value
        boundary = f"==watcher-{message.key}=="
        head["MIME-Version"] = "1.0"
        head["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
        headers = b"\r\n".join([bytes(head).split(b"\r\n\r\n", 1)[0], *unsubscribe])
        parts = [_part(boundary, "plain", message.text), _part(boundary, "html", message.html)]
        return headers + b"\r\n\r\n" + b"".join(parts) + f"--{boundary}--\r\n".encode()

    def unsubscribe_for(self, email: str) -> str:
        """The channel's ``unsubscribe`` link for ``email`` ({email} filled in, URL-encoded), else a mailto:."""
        link = str(self.option("unsubscribe") or f"mailto:{self.sender}?subject=desabonnement")
        return link.replace("{email}", quote(email, safe="")) if link.startswith("https://") else link

    def send(self, message: Message) -> None:
        self.deliver(message, _always)

    def deliver(self, message: Message, commit: Callable[[], bool]) -> bool:
        """MAIL, RCPT, DATA and the whole body, then ``commit()``, then the final ``.``: until that dot the server
        discards the message if the connection drops, so a crash before it cannot deliver anything; the only
        uncertain moment left is between the dot and the ledger recording the server's 250."""
        if not message.email:
            raise NotifyError(self.name, f"no e-mail address for {message.person}", permanent=True)
        mail = self.build(message)
        smtp = self._connection()
        try:
            return self._transfer(smtp, message.email, mail, commit)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise self._refused(code, text) from None
        except smtplib.SMTPResponseException as exc:
            raise self._refused(exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise NotifyError(self.name, f"lost {self._where()}: {exc or type(exc).__name__}",
                              down="connection") from None

    def _transfer(self, smtp: smtplib.SMTP, to: str, mail: bytes, commit: Callable[[], bool]) -> bool:
        smtp.ehlo_or_helo_if_needed()
        code, reply = smtp.mail(self.sender, [f"size={len(mail)}"] if smtp.has_extn("size") else [])
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, self.sender)
        code, reply = smtp.rcpt(to)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
        code, reply = smtp.docmd("data")
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        body = re.sub(rb"(?m)^\.", b"..", mail)
        smtp.send(body if body.endswith(b"\r\n") else body + b"\r\n")
        if not commit():  # another sender has it: drop the connection, the server discards the unfinished mail
            self._drop()
            return False
        smtp.send(b".\r\n")
        code, reply = smtp.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        return True

    def _refused(self, code: int, text: bytes | str) -> NotifyError:
        """The server refused this message; the connection stays usable after a RSET unless it said 421."""
        if code == 421 or not self._reset():
            self._drop()
            return NotifyError(self.name, f"SMTP {code} {_text(text)}".strip(), down="connection")
        return _smtp_error(self.name, code, text)

    def _reset(self) -> bool:
        try:
            return self._smtp is not None and self._smtp.rset()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

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
        try:
            self._smtp = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            raise NotifyError(self.name, f"login refused by {self._where()}: SMTP {exc.smtp_code} "
                              f"{_text(exc.smtp_error)}", down="login") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise NotifyError(self.name, f"server does not support it: {exc}", permanent=True, down="login") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(self.name, f"cannot reach {self._where()}: {exc or type(exc).__name__}",
                              down="connection") from None
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        """A logged-in connection; ``self._opening`` holds it meanwhile so that ``abort`` can cut it."""
        security, timeout = self.option("security", "starttls"), float(self.option("timeout", 30))
        host, port = str(self.option("host")), self._port()
        context = ssl.create_default_context(cafile=self.option("ca_file") or None)
        smtp = (smtplib.SMTP_SSL(timeout=timeout, context=context) if security == "ssl"
                else smtplib.SMTP(timeout=timeout))
        smtp._host = host  # type: ignore[attr-defined]  # as SMTP(host) does: the name TLS checks the certificate for
        self._opening = smtp
        try:
            smtp.connect(host, port)
            # the final dot goes out alone after the claim: without this, Nagle's algorithm holds it until the
            # server acknowledges the body (up to its delayed-ACK time)
            if smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if security == "starttls":
                smtp.starttls(context=context)
            if self.option("username"):
                _login_once(smtp, str(self.option("username")), self._secrets.get("password", ""))
        except BaseException:
            smtp.close()
            raise
        finally:
            self._opening = None
        return smtp

    def abort(self) -> None:
        """Cut the socket of the connection being opened or used (from another thread): the send fails at once."""
        for smtp in (self._opening, self._smtp):
            sock = getattr(smtp, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _drop(self) -> None:
        """Close without QUIT (in the middle of DATA a QUIT would be read as message text)."""
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


def _always() -> bool:
    return True


def _text(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _part(boundary: str, subtype: str, text: str) -> bytes:
    """One quoted-printable part (binascii's C encoder: readable, a little larger than the text, lines <= 76)."""
    body = binascii.b2a_qp("\n".join(text.splitlines()).encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return (f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + body + b"\r\n"


def _smtp_error(channel: str, code: int, text: bytes | str) -> NotifyError:
    return NotifyError(channel, f"SMTP {code} {_text(text)}".strip(), permanent=500 <= code < 600)


_MECHANISMS = ("CRAM-MD5", "PLAIN", "LOGIN")  # smtplib's order of preference


def _login_once(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """One AUTH command, with the best mechanism the server offers. ``smtplib.SMTP.login`` tries the next
    mechanism after a refusal (PLAIN, then LOGIN): two failed logins in the server's log for one wrong password,
    where one is the answer (and enough to open the breaker)."""
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    offered = smtp.esmtp_features["auth"].upper().split()
    mechanism = next((m for m in _MECHANISMS if m in offered), None)
    if mechanism is None:
        raise smtplib.SMTPException(f"no authentication method in common with the server (it offers {offered})")
    smtp.user, smtp.password = user, password
    smtp.auth(mechanism, getattr(smtp, "auth_" + mechanism.lower().replace("-", "_")))


def _header_uri(uri: str) -> str:
    """``uri`` as printable ASCII for a header: anything else (non-ASCII, spaces, line breaks, angle brackets)
    percent-encoded."""
    return quote(uri, safe="!#$%&'()*+,-./:;=?@[]_~")

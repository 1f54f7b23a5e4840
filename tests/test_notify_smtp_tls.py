"""SMTP with STARTTLS, implicit TLS and AUTH against a real local server (aiosmtpd) with a throwaway CA."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from test_notify_support import _Handler, free_port

from watcher.notify.base import Message
from watcher.notify.email import EmailChannel
from watcher.util.errors import NotifyError

PASSWORD = "correct horse battery staple"
# aiosmtpd warns about AUTH without STARTTLS on the implicit-TLS server, where the socket is encrypted already
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


class _Config:
    def __init__(self, options: dict[str, Any]):
        self.name, self.kind, self.options = "mail", "email", options


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"veille" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(params=["starttls", "ssl"])
def server(request: pytest.FixtureRequest, ca: trustme.CA) -> Iterator[tuple[str, int, _Handler]]:
    handler, port, context = _Handler(), free_port(), _server_context(ca)
    # aiosmtpd's auth_require_tls only knows STARTTLS: on an implicit-TLS socket AUTH is already encrypted
    tls = {"tls_context": context, "require_starttls": True, "auth_require_tls": True} \
        if request.param == "starttls" else {"ssl_context": context, "auth_require_tls": False}
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=_authenticate,
                            auth_required=True, **tls)
    controller.start()
    yield request.param, port, handler
    controller.stop()


def _channel(security: str, port: int, ca_file: str, password: str) -> EmailChannel:
    options = {"host": "127.0.0.1", "port": port, "security": security, "from": "veille@cabinet-test.fr",
               "username": "veille", "ca_file": ca_file, "timeout": 5}
    return EmailChannel(_Config(options), {"password": password})


def _message() -> Message:
    return Message(key="tls-1", subject="Essai", text="texte", html="<p>texte</p>", slack={}, person="Alice",
                   email="alice@cabinet-test.fr", slack_target="", date=None, headers={})


def test_tls_and_login_then_delivery(server: tuple[str, int, _Handler], ca_file: str) -> None:
    security, port, handler = server
    channel = _channel(security, port, ca_file, PASSWORD)
    channel.send(_message())
    channel.close()
    assert len(handler.messages) == 1 and b"Message-ID: <watcher.tls-1@cabinet-test.fr>" in handler.messages[0]


def test_a_wrong_password_stops_the_channel_not_the_message(server: tuple[str, int, _Handler],
                                                            ca_file: str) -> None:
    """A refused login is the channel's fault: the message is retried once a person fixed the password, and the
    sender stops the channel for the run (the breaker) instead of logging in again for every message."""
    security, port, handler = server
    with pytest.raises(NotifyError) as caught:
        _channel(security, port, ca_file, "wrong").send(_message())
    assert caught.value.down == "login" and not caught.value.permanent
    assert "535" in str(caught.value) and handler.messages == []
    assert "wrong" not in str(caught.value)


def test_an_untrusted_certificate_is_refused(server: tuple[str, int, _Handler], tmp_path: Path) -> None:
    security, port, handler = server
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(NotifyError, match="cannot reach 127.0.0.1"):
        _channel(security, port, str(other), PASSWORD).send(_message())
    assert handler.messages == []

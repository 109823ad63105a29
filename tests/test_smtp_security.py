"""STARTTLS, implicit TLS and AUTH against a real aiosmtpd server with a self-signed certificate."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from newsletter.delivery.smtp import SenderRejected, SmtpSender, TemporaryFailure
from newsletter.sink import _free_port
from tests.conftest import service_unavailable
from tests.scripted_smtp import ScriptedHandler

MESSAGE = (b"From: digest@example.org\r\nTo: ada@example.org\r\nSubject: hi\r\nMessage-ID: <t@example.org>\r\n"
           b"\r\nhello\r\n")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if not shutil.which("openssl"):
        service_unavailable("openssl is needed to make a test certificate (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return folder / "cert.pem", context


def accept_secret(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=(auth_data.login, auth_data.password) == (b"digest", b"s3cret"), handled=False)


def serve(**options):
    handler = ScriptedHandler(pipelining=True)
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port("127.0.0.1"), **options)
    controller.start()
    return controller, handler


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_auth_delivers(settings, certificate, security):
    cert, context = certificate
    # aiosmtpd only counts STARTTLS as TLS for AUTH; under implicit TLS the whole session is encrypted anyway
    tls = ({"tls_context": context, "require_starttls": True} if security == "starttls"
           else {"ssl_context": context, "auth_require_tls": False})
    controller, handler = serve(authenticator=accept_secret, auth_required=True, **tls)
    try:
        local = settings.model_copy(update={
            "smtp_host": "127.0.0.1", "smtp_port": controller.port, "smtp_security": security, "smtp_ca_file": cert,
            "smtp_username": "digest", "smtp_password": "s3cret", "smtp_timeout": 5})
        with SmtpSender(local) as sender:
            sender.send("ada@example.org", MESSAGE)
            sender.send("grace@example.org", MESSAGE)
            assert sender.connections_opened == 1
        assert [e.rcpt_tos for e in handler.accepted] == [["ada@example.org"], ["grace@example.org"]]
    finally:
        controller.stop()


def test_wrong_password_stops_sending_without_blaming_recipients(settings, certificate):
    cert, context = certificate
    controller, _ = serve(authenticator=accept_secret, auth_required=True, tls_context=context, require_starttls=True)
    try:
        local = settings.model_copy(update={
            "smtp_host": "127.0.0.1", "smtp_port": controller.port, "smtp_security": "starttls", "smtp_ca_file": cert,
            "smtp_username": "digest", "smtp_password": "wrong", "smtp_timeout": 5})
        with SmtpSender(local) as sender, pytest.raises(SenderRejected, match="login"):
            sender.send("ada@example.org", MESSAGE)
    finally:
        controller.stop()


def test_unverifiable_certificate_is_refused(settings, certificate):
    _, context = certificate
    controller, handler = serve(tls_context=context, require_starttls=True)
    try:
        local = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": controller.port,
                                            "smtp_security": "starttls", "smtp_timeout": 5})
        with SmtpSender(local) as sender, pytest.raises(TemporaryFailure, match="CERTIFICATE_VERIFY_FAILED"):
            sender.send("ada@example.org", MESSAGE)
        assert handler.accepted == []
    finally:
        controller.stop()

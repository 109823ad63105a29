"""`newsletter doctor` on the demo's settings (every problem listed, exit 1) and on a production-like deployment
built from real parts on loopback (exit 0): the web app over https with its own certificate, SMTP with STARTTLS and
AUTH, a generated DKIM key, a real-looking domain, Redis, the migrated database, recorded sources served over HTTP.
Then the production gate: `send`, a Celery worker and beat refuse to start while doctor reports an error.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from functools import partial

import dkim
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from newsletter.config import PLACEHOLDER_POSTAL_ADDRESS, Settings
from newsletter.delivery.dkim_sign import dkim_signer, dns_record
from newsletter.doctor import ERROR, OK, diagnose, dkim_key_of, has_errors, published, reserved_name, txt_records
from newsletter.sink import _free_port
from tests.helpers import ROOT, process_environment
from tests.scripted_smtp import ScriptedHandler
from tests.test_ingest_hardening import ARXIV_CS_LG, HF_RECORDED, RecordedApi

DOMAIN = "paperlab-digest.org"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def demo_like(settings, redis_url) -> Settings:
    """The settings `make demo` runs with, as an operator would leave them: every default a real list must change."""
    settings.base_url = f"http://127.0.0.1:{closed_port()}"
    settings.from_address = "Paper Digest <digest@localhost>"
    settings.secret_key, settings.admin_token = "", ""
    settings.postal_address = PLACEHOLDER_POSTAL_ADDRESS
    settings.smtp_host, settings.smtp_port = "127.0.0.1", closed_port()
    settings.sources = "sample"
    return settings


def test_demo_settings_list_each_problem_one_line_each_and_exit_1(demo_like, cli):
    result = cli("doctor")
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    errors = {line.split()[1] for line in lines if line.startswith("error")}
    assert errors == {"base-url", "web", "from", "dkim", "postal", "secret", "smtp", "sources"}, result.output
    text = result.output
    assert "http://127.0.0.1" in text and "RFC 8058" in text and "need https" in text
    assert "digest@localhost is not a real domain" in text
    assert "no DKIM signature" in text and "Gmail and Yahoo" in text
    assert "NEWSLETTER_POSTAL_ADDRESS is the placeholder" in text
    assert "NEWSLETTER_SECRET_KEY is not set" in text
    assert "`sample`" in text
    assert all("(fix: " in line for line in lines if line.startswith("error"))  # each says what to do
    assert lines[-1].startswith("8 errors")

    findings = json.loads(cli("doctor", "--json").output)
    assert {f["level"] for f in findings} <= {"error", "warning", "ok"}
    assert all(set(f) == {"level", "check", "message", "fix"} for f in findings)
    assert {f["check"] for f in findings if f["level"] == "ok"} >= {"redis", "database"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (the web app's and the SMTP server's)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"


class HttpsServer:
    """The web app under a real uvicorn server with TLS, on a free loopback port, in a thread."""

    def __init__(self, app, certificate):
        import uvicorn

        cert, key = certificate
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ssl_certfile=str(cert), ssl_keyfile=str(key))
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> HttpsServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline and self._thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


def dkim_key(folder) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "dkim.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


@pytest.fixture
def production_like(settings, redis_url, certificate, tmp_path):
    """Every part real, on loopback: https web app, STARTTLS + AUTH SMTP, DKIM key, recorded sources."""
    from newsletter.web.app import create_app

    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def accept(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"digest", b"s3cret"), handled=False)

    smtp = Controller(ScriptedHandler(pipelining=True), hostname="127.0.0.1", port=_free_port("127.0.0.1"),
                      tls_context=context, require_starttls=True, authenticator=accept, auth_required=True)
    api = RecordedApi()
    api.serve("/api/daily_papers", HF_RECORDED)
    api.serve("/api/query", ARXIV_CS_LG, content_type="application/atom+xml")
    api.thread.start()
    smtp.start()
    settings.env = "production"
    settings.from_address = f"Paper Digest <digest@{DOMAIN}>"
    settings.secret_key = "k" * 48
    settings.admin_token = "a-long-random-admin-token-for-this-test"
    settings.postal_address = "Paper Lab, 12 Rue de l'Exemple, 75011 Paris, France"
    settings.dkim_key_path, settings.dkim_selector = dkim_key(tmp_path), "digest2026"
    settings.smtp_host, settings.smtp_port, settings.smtp_security = "127.0.0.1", smtp.port, "starttls"
    settings.smtp_username, settings.smtp_password, settings.smtp_ca_file = "digest", "s3cret", cert
    settings.sources = "hf:daily,arxiv:cs.LG"
    settings.hf_api_url, settings.arxiv_api_url = f"{api.url}/api/daily_papers", f"{api.url}/api/query"
    try:
        with HttpsServer(create_app(settings), certificate) as web:
            settings.base_url = web.url
            yield settings
    finally:
        smtp.stop()
        api.server.shutdown()
        api.server.server_close()


def run_cli(settings: Settings, *args: str, extra_env: dict | None = None, timeout: float = 60):
    """`newsletter ARGS` in its own process, as an operator runs it (with `extra_env`, e.g. the CA to trust)."""
    return subprocess.run([sys.executable, "-m", "newsletter", *args], capture_output=True, text=True, timeout=timeout,
                          env={**process_environment(settings), **(extra_env or {})}, cwd=ROOT)


def test_a_production_like_deployment_passes(production_like, certificate):
    cert, _ = certificate
    # The web app's certificate is trusted the way OpenSSL lets any operator add a CA: SSL_CERT_FILE.
    result = run_cli(production_like, "doctor", extra_env={"SSL_CERT_FILE": str(cert)})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("error")]
    assert lines[-1].startswith("0 errors") and lines[-1].endswith("ready")
    checks = {line.split()[1] for line in lines if line.startswith("ok")}
    assert checks >= {"env", "web", "from", "dkim", "postal", "secret", "smtp", "redis", "database", "sources"}
    assert "SMTP 127.0.0.1" in result.stdout and "STARTTLS, AUTH as digest" in result.stdout
    assert "hf:daily: 30 papers" in result.stdout and "arxiv:cs.LG: 5 papers" in result.stdout
    # The DKIM record to publish, exactly: name and value on the dkim line
    name, value, bits = dns_record(production_like)
    assert name == f"digest2026._domainkey.{DOMAIN}" and bits == 2048
    assert f'publish: {name} TXT "{value}"' in result.stdout
    # ... and the SPF and DMARC records it expects (DNS is not reachable from the tests: printed as warnings)
    assert f'{DOMAIN} TXT "v=spf1 mx' in result.stdout and f'_dmarc.{DOMAIN} TXT "v=DMARC1; p=none' in result.stdout


def test_the_printed_dkim_record_verifies_our_signatures(settings, tmp_path):
    """What doctor tells the operator to publish is the key receivers need: dkimpy verifies a signed message
    against exactly that record."""
    settings.from_address, settings.dkim_selector = f"Paper Digest <digest@{DOMAIN}>", "s1"
    settings.dkim_key_path = dkim_key(tmp_path)
    name, value, _ = dns_record(settings)
    message = (f"From: digest@{DOMAIN}\r\nTo: ada@example.org\r\nSubject: hi\r\nDate: Mon, 1 Jun 2026 07:00:00 +0000"
               f"\r\nMessage-ID: <x@{DOMAIN}>\r\n\r\nhello\r\n").encode()
    signer = dkim_signer(settings)
    assert signer is not None
    signed = signer(message)
    published = {name + ".": value.encode()}
    assert dkim.verify(signed, dnsfunc=lambda qname, timeout=5: published.get(qname.decode()))
    assert base64.b64decode(value.split("p=")[1])  # the key itself, base64


def test_a_broken_dkim_key_is_an_error_with_its_reason(settings, tmp_path):
    settings.dkim_selector = "digest2026"
    settings.dkim_key_path = tmp_path / "missing.pem"
    [finding] = [f for f in diagnose(settings) if f.check == "dkim"]
    assert finding.level == ERROR and "cannot read the DKIM key" in finding.message
    (tmp_path / "weak.pem").write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    settings.dkim_key_path = tmp_path / "weak.pem"
    levels = {f.level for f in diagnose(settings) if f.check == "dkim"}
    assert "warning" in levels and ERROR not in levels


@pytest.mark.parametrize(("host", "reserved"), [
    ("localhost", True), ("digest.localhost", True), ("example.org", True), ("news.example.com", True),
    ("mail.invalid", True), ("box.test", True), ("nas.local", True), ("host", True),
    (DOMAIN, False), ("digest.example-lab.org", False), ("arxiv.org", False),
])
def test_reserved_names(host, reserved):
    assert reserved_name(host) is reserved


# The production gate ---------------------------------------------------------------------------------------------

def test_send_refuses_in_production_while_doctor_reports_errors(demo_like, cli):
    demo_like.env = "production"
    result = cli("send")
    assert result.exit_code == 1
    assert "newsletter send refuses to start: NEWSLETTER_ENV=production" in result.output
    assert "error   dkim" in result.output and "error   postal" in result.output
    assert cli("send", "--dry-run").exit_code == 0  # sends nothing: not gated
    resumed = cli("editions", "resume", "1")  # resuming sends the rest of an edition: gated the same way
    assert resumed.exit_code == 1
    assert "newsletter editions resume refuses to start: NEWSLETTER_ENV=production" in resumed.output
    demo_like.env = "development"
    assert "refuses" not in cli("send").output  # the demo and tests are not gated


@pytest.mark.parametrize("command", [["worker", "--pool=solo", "--loglevel=WARNING"],
                                     ["beat", "--loglevel=WARNING"]])
def test_workers_and_beat_refuse_to_start_in_production_while_doctor_reports_errors(demo_like, tmp_path, command):
    demo_like.env = "production"
    started = time.monotonic()
    if command[0] == "beat":
        command = [*command, f"--schedule={tmp_path / 'beat-schedule'}"]
    result = subprocess.run([sys.executable, "-m", "celery", "-A", "tasks.celery_app", *command],
                            capture_output=True, text=True, timeout=90, env=process_environment(demo_like), cwd=ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "refuses to start: NEWSLETTER_ENV=production" in result.stderr
    assert "error   dkim" in result.stderr and "error   secret" in result.stderr
    assert time.monotonic() - started < 60


def test_the_gate_opens_once_the_deployment_is_ready(production_like, certificate):
    """The same production-like deployment: doctor has no error, so `send` runs (nobody to send to yet)."""
    cert, _ = certificate
    result = run_cli(production_like, "send", "--json", extra_env={"SSL_CERT_FILE": str(cert)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "refuses" not in result.stderr
    findings = diagnose(production_like.model_copy(update={"base_url": "http://127.0.0.1:1"}))
    assert has_errors(findings) and {f.check for f in findings if f.level == ERROR} == {"base-url", "web"}
    assert [f.level for f in findings if f.check == "env"] == [OK]


class LoopbackDns:
    """A real DNS server on 127.0.0.1 (UDP, own thread) answering TXT queries from `records` (NXDOMAIN otherwise)."""

    def __init__(self, records: dict[str, list[str]]):
        self.records = records
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.address = self.socket.getsockname()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        import dns.message
        import dns.rcode
        import dns.rrset

        while not self.stopped.is_set():
            try:
                data, client = self.socket.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            texts = self.records.get(question.name.to_text().rstrip("."))
            if texts is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                chunks = [" ".join(f'"{t[i:i + 255]}"' for i in range(0, len(t), 255)) for t in texts]
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "TXT", *chunks))
            self.socket.sendto(response.to_wire(), client)

    def __enter__(self) -> LoopbackDns:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        self.thread.join(2)
        self.socket.close()


def test_the_published_dkim_record_must_be_this_keys(settings, tmp_path):
    """doctor compares what DNS publishes at <selector>._domainkey with the configured key (a real DNS server)."""
    settings.from_address, settings.dkim_selector = f"Paper Digest <digest@{DOMAIN}>", "s1"
    settings.dkim_key_path = dkim_key(tmp_path)
    name, value, _ = dns_record(settings)
    (tmp_path / "other").mkdir()
    other = dns_record(settings.model_copy(update={"dkim_key_path": dkim_key(tmp_path / "other")}))[1]

    def finding(records):
        with LoopbackDns(records) as server:
            return published(name, value, "dkim", lambda found: dkim_key_of(found) == dkim_key_of(value),
                             "a different key", resolve=partial(txt_records, nameserver=server.address))

    assert finding({name: [value]}).level == OK  # 2048-bit keys are longer than one 255-byte TXT string
    assert finding({name: ["v=spf1 -all", other]}).level == ERROR
    missing = finding({})
    assert missing.level == "warning" and f'publish: {name} TXT "{value}"' in missing.message

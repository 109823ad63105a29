"""`newsletter doctor`: is this deployment ready for a real list? One small check per concern, each returning
findings (error / warning / ok, what was checked, what was found, how to fix it).

Errors are what mailbox providers or readers would hold against us (an http one-click link, From: localhost, no
DKIM, the placeholder postal address, a generated or published secret) or what stops the daily job (SMTP, Redis,
the database, the sources unreachable). With NEWSLETTER_ENV=production, `newsletter send`, the Celery workers and
beat refuse to start while any error remains (`require_ready`); elsewhere (the demo, the tests) nothing is gated.

Checks that touch the network use short timeouts (NETWORK_TIMEOUT) and run side by side, so a doctor run takes
seconds even when everything is down. DNS is read with dnspython when it is installed (the DKIM, SPF and DMARC
records); without DNS the expected records are still printed, as warnings to check by hand.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from newsletter import clock, db
from newsletter.config import PLACEHOLDER_POSTAL_ADDRESS, Settings, SmtpSecurity
from newsletter.errors import NewsletterError
from newsletter.ingest import split_sources
from newsletter.ingest.sources import SAMPLE, is_shortcut, load

NETWORK_TIMEOUT = 5.0  # seconds for each connection a check opens
DNS_TIMEOUT = 3.0
RESERVED_SUFFIXES = (".localhost", ".local", ".localdomain", ".test", ".invalid", ".example", ".internal", ".lan")
EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")
PLACEHOLDER_SECRETS = ("change-me", "changeme", "secret", "test", "dev")
ERROR, WARNING, OK = "error", "warning", "ok"


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning | ok
    check: str
    message: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.level:<7} {self.check:<9} {self.message}" + (f" (fix: {self.fix})" if self.fix else "")

    def as_dict(self) -> dict:
        return asdict(self)


class NotReady(NewsletterError):
    """NEWSLETTER_ENV=production and `newsletter doctor` reports errors: nothing is sent until they are fixed."""

    def __init__(self, what: str, findings: list[Finding]):
        self.findings = findings
        errors = [f for f in findings if f.level == ERROR]
        super().__init__(f"{what} refuses to start: NEWSLETTER_ENV=production and `newsletter doctor` reports "
                         f"{len(errors)} error{'s' if len(errors) != 1 else ''}:\n"
                         + "\n".join(f.line() for f in errors))


def is_production(settings: Settings) -> bool:
    return settings.env == "production"


def require_ready(settings: Settings, what: str) -> None:
    """In production, raise NotReady (with the doctor's lines) unless the deployment has no error."""
    if not is_production(settings):
        return
    findings = diagnose(settings)
    if has_errors(findings):
        raise NotReady(what, findings)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.level == ERROR for f in findings)


def diagnose(settings: Settings, day: date | None = None) -> list[Finding]:
    """Every check, run side by side; findings in a fixed order (the order of CHECKS)."""
    day = day or clock.today()
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        futures = [pool.submit(_guarded, check, settings, day) for check in CHECKS]
        return [finding for future in futures for finding in future.result()]


def _guarded(check: Callable, settings: Settings, day: date) -> list[Finding]:
    try:
        return check(settings, day)
    except Exception as error:  # a check that breaks is itself a finding, never a traceback
        return [Finding(ERROR, check.__name__.removeprefix("check_").replace("_", "-"),
                        f"the check itself failed: {error.__class__.__name__}: {error}")]


# Names -----------------------------------------------------------------------------------------------------------

def reserved_name(host: str) -> bool:
    """localhost, example.*, .invalid and the like: names no reader's mail or browser can reach as ours."""
    host = host.lower().rstrip(".")
    return ("." not in host or host == "localhost" or host.endswith(RESERVED_SUFFIXES) or host in EXAMPLE_DOMAINS
            or any(host.endswith("." + d) for d in EXAMPLE_DOMAINS))


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def from_domain(settings: Settings) -> str:
    return parseaddr(settings.from_address)[1].rpartition("@")[2].lower()


def envelope_domain(settings: Settings) -> str:
    return (parseaddr(settings.bounce_address)[1].rpartition("@")[2].lower() if settings.bounce_address
            else from_domain(settings))


# The checks ------------------------------------------------------------------------------------------------------

def check_environment(settings: Settings, day: date) -> list[Finding]:
    if is_production(settings):
        return [Finding(OK, "env", "NEWSLETTER_ENV=production: send, the workers and beat start only without errors")]
    return [Finding(OK, "env", f"NEWSLETTER_ENV={settings.env}: nothing is gated on these checks "
                               "(set NEWSLETTER_ENV=production where the real list is sent)")]


def check_base_url(settings: Settings, day: date) -> list[Finding]:
    url = settings.base_url.rstrip("/")
    parts = urlsplit(url)
    host = parts.hostname or ""
    findings = []
    fix = "set NEWSLETTER_BASE_URL=https://<the public address of the web app>"
    if parts.scheme != "https":
        findings.append(Finding(ERROR, "base-url", f"NEWSLETTER_BASE_URL is {url}: links in emails, and RFC 8058 "
                                "one-click unsubscribe, need https", fix))
    address = _ip(host)
    if not host or (address is None and reserved_name(host)):
        findings.append(Finding(ERROR, "base-url", f"{host or '(no host)'} is not a public name: readers cannot "
                                "open links to it", fix))
    elif address is not None and (address.is_loopback or address.is_private or address.is_link_local):
        findings.append(Finding(WARNING, "base-url", f"{host} is a {'loopback' if address.is_loopback else 'private'}"
                                " address: links in emails open only from this network", fix))
    findings.append(_web_answers(url))
    return findings


def _web_answers(url: str) -> Finding:
    import httpx

    health = f"{url}/health"
    try:
        # The system's CAs (OpenSSL's defaults, so SSL_CERT_FILE is honoured), proxies from the environment.
        response = httpx.get(health, timeout=NETWORK_TIMEOUT, verify=ssl.create_default_context(),
                             follow_redirects=False)
    except httpx.HTTPError as error:
        return Finding(ERROR, "web", f"the web app does not answer at {health}: {_describe(error)}",
                       "start it (`newsletter serve`, behind an https reverse proxy) where NEWSLETTER_BASE_URL points")
    if response.status_code != 200 or response.text.strip() != "ok":
        return Finding(ERROR, "web", f"{health} answered HTTP {response.status_code}, not this app's health check",
                       "point NEWSLETTER_BASE_URL (and the proxy) at `newsletter serve`")
    return Finding(OK, "web", f"the web app answers at {health}")


def check_sender(settings: Settings, day: date) -> list[Finding]:
    address = parseaddr(settings.from_address)[1]
    domain = from_domain(settings)
    fix = "set NEWSLETTER_FROM=\"Paper Digest <digest@your-domain.org>\" (a domain you control, with DKIM)"
    if "@" not in address or not domain or reserved_name(domain) or _ip(domain) is not None:
        return [Finding(ERROR, "from", f"From: {address or settings.from_address} is not a real domain: providers "
                        "reject or junk it", fix)]
    findings = [Finding(OK, "from", f"From: {address}")]
    dkim_domain = (settings.dkim_domain or domain).lower()
    if dkim_domain != domain and not domain.endswith("." + dkim_domain):
        findings.append(Finding(WARNING, "from", f"DKIM signs for {dkim_domain}, which does not align with the "
                                f"From domain {domain}: DMARC fails", "set NEWSLETTER_DKIM_DOMAIN to the From domain"))
    return findings


def check_dkim(settings: Settings, day: date) -> list[Finding]:
    from newsletter.delivery.dkim_sign import dkim_enabled, dns_record

    if not dkim_enabled(settings):
        return [Finding(ERROR, "dkim", "no DKIM signature: Gmail and Yahoo require one from bulk senders (2024)",
                        "openssl genrsa -out dkim.pem 2048; set NEWSLETTER_DKIM_KEY_PATH=dkim.pem and "
                        "NEWSLETTER_DKIM_SELECTOR=<a name, e.g. digest2026>; run doctor again for the DNS record")]
    if not _valid_label(settings.dkim_selector):
        return [Finding(ERROR, "dkim", f"the selector {settings.dkim_selector!r} is not a DNS label",
                        "letters, digits and hyphens, e.g. NEWSLETTER_DKIM_SELECTOR=digest2026")]
    try:
        name, value, bits = dns_record(settings)
    except NewsletterError as error:
        return [Finding(ERROR, "dkim", str(error), "point NEWSLETTER_DKIM_KEY_PATH at a readable PEM RSA key")]
    findings = []
    if bits < 1024:
        findings.append(Finding(ERROR, "dkim", f"the key has {bits} bits: receivers ignore keys under 1024",
                                "openssl genrsa -out dkim.pem 2048"))
    elif bits < 2048:
        findings.append(Finding(WARNING, "dkim", f"the key has {bits} bits; 2048 is the norm",
                                "openssl genrsa -out dkim.pem 2048"))
    findings.append(Finding(OK, "dkim", f"signing with {settings.dkim_key_path} (RSA {bits}), selector "
                                        f"{settings.dkim_selector}; publish: {name} TXT \"{value}\""))
    findings.append(published(name, value, "dkim", lambda found: dkim_key_of(found) == dkim_key_of(value),
                              "the published key is a different one: the selector does not match this key"))
    return findings


def check_dns_policy(settings: Settings, day: date) -> list[Finding]:
    """SPF for the envelope domain and DMARC for the From domain: the records doctor expects, and what DNS has."""
    domain, envelope = from_domain(settings), envelope_domain(settings)
    if not domain or reserved_name(domain):
        return []  # check_sender reports it
    relay, relay_ip = settings.smtp_host, _ip(settings.smtp_host)
    if reserved_name(relay) if relay_ip is None else relay_ip.is_loopback or relay_ip.is_private:
        mechanism = "include:<your mail relay's SPF domain>"
    elif relay_ip is not None:
        mechanism = f"ip{relay_ip.version}:{relay_ip}"
    else:
        mechanism = f"a:{relay}"
    spf = f"v=spf1 mx {mechanism} ~all"
    dmarc = f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}; adkim=r; aspf=r"
    return [
        published(envelope, spf, "spf", lambda found: found.lower().startswith("v=spf1"),
                   "", expect=f"{envelope} TXT \"{spf}\""),
        published(f"_dmarc.{domain}", dmarc, "dmarc", lambda found: found.upper().startswith("V=DMARC1"),
                   "", expect=f"_dmarc.{domain} TXT \"{dmarc}\" (p=none first; quarantine once reports are clean)"),
    ]


def check_postal_address(settings: Settings, day: date) -> list[Finding]:
    address = " ".join(settings.postal_address.split())
    if not address or address == PLACEHOLDER_POSTAL_ADDRESS:
        return [Finding(ERROR, "postal", "NEWSLETTER_POSTAL_ADDRESS is the placeholder: CAN-SPAM and most "
                        "providers want the sender's real postal address in every email",
                        "set NEWSLETTER_POSTAL_ADDRESS=\"Your Lab, Street 1, City, Country\"")]
    return [Finding(OK, "postal", f"postal address: {address}")]


def check_secrets(settings: Settings, day: date) -> list[Finding]:
    findings = []
    key = settings.secret_key
    fix = "set NEWSLETTER_SECRET_KEY to a long random string, the same on every machine: " \
          "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
    if not key:
        findings.append(Finding(ERROR, "secret", "NEWSLETTER_SECRET_KEY is not set: a key generated into "
                                f"{settings.data_dir}/secret_key signs links, different on each machine and lost "
                                "with the folder (every link in sent emails would break)", fix))
    elif _placeholder(key) or len(key) < 32:
        findings.append(Finding(ERROR, "secret", "NEWSLETTER_SECRET_KEY is a placeholder or shorter than 32 "
                                "characters: anyone could forge unsubscribe and preference links", fix))
    else:
        findings.append(Finding(OK, "secret", "NEWSLETTER_SECRET_KEY is set"))
    if settings.admin_token and (_placeholder(settings.admin_token) or len(settings.admin_token) < 24):
        findings.append(Finding(ERROR, "admin", "NEWSLETTER_ADMIN_TOKEN is a placeholder or short: it opens the "
                                "admin pages", "set a long random NEWSLETTER_ADMIN_TOKEN, or leave it empty "
                                "(admin closed)"))
    return findings


def _placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(lowered.startswith(p) for p in PLACEHOLDER_SECRETS)


def check_smtp(settings: Settings, day: date) -> list[Finding]:
    from newsletter.delivery.smtp import SmtpSender

    quick = settings.model_copy(update={"smtp_timeout": min(settings.smtp_timeout, NETWORK_TIMEOUT)})
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    how = {SmtpSecurity.none: "no TLS", SmtpSecurity.starttls: "STARTTLS", SmtpSecurity.ssl: "TLS"}[
        settings.smtp_security] + (f", AUTH as {settings.smtp_username}" if settings.smtp_username else "")
    try:
        with SmtpSender(quick) as sender:
            sender.connect()
    except NewsletterError as error:
        return [Finding(ERROR, "smtp", str(error), "check NEWSLETTER_SMTP_HOST, _PORT, _SECURITY, _USERNAME, "
                        "_PASSWORD (and _CA_FILE for a private CA)")]
    findings = [Finding(OK, "smtp", f"SMTP {where} accepts us ({how})")]
    address = _ip(settings.smtp_host)
    local = settings.smtp_host == "localhost" or (address is not None and address.is_loopback)
    if settings.smtp_security == SmtpSecurity.none and not local:
        findings.append(Finding(WARNING, "smtp", f"mail and any password travel to {where} unencrypted",
                                "NEWSLETTER_SMTP_SECURITY=starttls (port 587) or ssl (465)"))
    return findings


def check_redis(settings: Settings, day: date) -> list[Finding]:
    import redis

    try:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=NETWORK_TIMEOUT,
                                      socket_timeout=NETWORK_TIMEOUT)
        client.ping()
        client.close()
    except (redis.RedisError, ValueError) as error:
        return [Finding(ERROR, "redis", f"Redis at {_safe_url(settings.redis_url)} does not answer: {error}",
                        "start Redis or fix NEWSLETTER_REDIS_URL (Celery's broker)")]
    return [Finding(OK, "redis", f"Redis at {_safe_url(settings.redis_url)} answers")]


def check_database(settings: Settings, day: date) -> list[Finding]:
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import SQLAlchemyError

    url = settings.sqlalchemy_url
    shown = _safe_url(url)
    head = ScriptDirectory.from_config(db.alembic_config(url)).get_current_head()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return [Finding(ERROR, "database", f"there is no database file at {url.removeprefix('sqlite:///')}",
                        "newsletter db upgrade (or set NEWSLETTER_DATABASE_URL to the production database)")]
    try:
        current = db.current_revision(url)
    except SQLAlchemyError as error:
        return [Finding(ERROR, "database", f"the database {shown} is not reachable: {str(error).splitlines()[0]}",
                        "fix NEWSLETTER_DATABASE_URL or start the database")]
    if current != head:
        return [Finding(ERROR, "database", f"the database {shown} is at migration {current or '(none)'}, not {head}",
                        "newsletter db upgrade")]
    return [Finding(OK, "database", f"the database {shown} is at the latest migration ({head})")]


def check_sources(settings: Settings, day: date) -> list[Finding]:
    sources = split_sources(settings.sources)
    if not sources:
        return [Finding(ERROR, "sources", "NEWSLETTER_SOURCES is empty: the scheduled job ingests nothing",
                        "NEWSLETTER_SOURCES=hf:daily,arxiv:cs.LG,cs.CL,cs.CV")]
    # One page of each, quickly: enough to know the source answers with a feed we can parse.
    quick = settings.model_copy(update={"ingest_timeout": min(settings.ingest_timeout, 2 * NETWORK_TIMEOUT),
                                        "arxiv_max_pages": 1, "arxiv_page_size": min(settings.arxiv_page_size, 50)})
    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        return list(pool.map(lambda source: _source(source, day, quick), sources))


def _source(source: str, day: date, settings: Settings) -> Finding:
    if source == SAMPLE:
        return Finding(ERROR, "sources", "NEWSLETTER_SOURCES includes `sample`: the scheduled job would ingest the "
                       "bundled demo corpus every day", "NEWSLETTER_SOURCES=hf:daily,arxiv:cs.LG,cs.CL,cs.CV")
    try:
        papers = load(source, day, settings)
    except NewsletterError as error:
        return Finding(ERROR, "sources", f"{source}: {error}", "check the source's address and this machine's "
                       "network (the APIs: NEWSLETTER_HF_API_URL, NEWSLETTER_ARXIV_API_URL)")
    what = f"for the edition of {day.isoformat()}" if is_shortcut(source) else ""
    if not papers:
        return Finding(WARNING, "sources", f"{source} answers but has no papers {what} (a weekend or holiday?)".strip())
    page = " (first page)" if source.startswith("arxiv:") else ""
    return Finding(OK, "sources", f"{source}: {len(papers)} papers{page} {what}".rstrip())


CHECKS: list[Callable[[Settings, date], list[Finding]]] = [
    check_environment, check_base_url, check_sender, check_dkim, check_dns_policy, check_postal_address,
    check_secrets, check_smtp, check_redis, check_database, check_sources,
]


# DNS -------------------------------------------------------------------------------------------------------------

def published(name: str, value: str, check: str, matches: Callable[[str], bool], mismatch: str,
              expect: str = "", resolve: Callable[[str], list[str]] | None = None) -> Finding:
    """Whether DNS has the record: ok when it matches, error for a different DKIM key, warning when missing or
    when DNS cannot be asked (the expected record is printed either way)."""
    expect = expect or f"{name} TXT \"{value}\""
    try:
        found = (resolve or txt_records)(name)
    except LookupError as error:
        return Finding(WARNING, check, f"could not look up {name} ({error}); expected: {expect}",
                       "publish it at your DNS provider if it is not there")
    tag = value.split(";")[0].split(" ")[0].lower()  # v=DKIM1, v=spf1, v=DMARC1
    relevant = [r for r in found if r.lower().startswith(tag) or (check == "dkim" and "p=" in r)]
    if not relevant:
        return Finding(WARNING, check, f"{name} has no such record yet; publish: {expect}", "add it at your DNS "
                       "provider")
    if any(matches(r) for r in relevant):
        return Finding(OK, check, f"{name} is published")
    return Finding(ERROR, check, f"{name}: {mismatch}; expected: {expect}", "publish the record above")


def txt_records(name: str, nameserver: tuple[str, int] | None = None) -> list[str]:
    """The TXT records of `name` (strings joined), from the system's resolvers or `nameserver` (address, port).
    Raises LookupError when DNS cannot answer; [] for none."""
    try:
        import dns.exception
        import dns.resolver
    except ImportError:
        raise LookupError("dnspython is not installed") from None
    try:
        resolver = dns.resolver.Resolver(configure=nameserver is None)
        if nameserver is not None:
            resolver.nameservers, resolver.port = [nameserver[0]], nameserver[1]
        resolver.lifetime = DNS_TIMEOUT
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.DNSException, OSError) as error:
        raise LookupError(error.__class__.__name__) from None
    return [b"".join(record.strings).decode(errors="replace") for record in answer]


def dkim_key_of(record: str) -> str:
    tags = dict(part.strip().partition("=")[::2] for part in record.split(";") if "=" in part)
    return "".join(tags.get("p", "").split())


def _valid_label(label: str) -> bool:
    return all(part and len(part) <= 63 and part.replace("-", "").isalnum() and part.isascii()
               for part in label.split("."))


def _safe_url(url: str) -> str:
    """A URL as it may be printed: without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{error.__class__.__name__}: {text}" if text else error.__class__.__name__

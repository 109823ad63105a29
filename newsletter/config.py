"""Settings, read from `NEWSLETTER_*` environment variables (and an optional `.env` file).

They are read at the edges only (the CLI's entry, the web app factory, the Celery app: `get_settings`) and passed
explicitly to everything below, so a function behaves the same whoever calls it. Tests build `Settings(...)`.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from enum import Enum, StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SmtpSecurity(StrEnum):
    none = "none"
    starttls = "starttls"
    ssl = "ssl"


PLACEHOLDER_POSTAL_ADDRESS = "Paper Digest, 1 Example Street, 00000 Nowhere"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_", env_file=".env", extra="ignore",
                                      populate_by_name=True)

    # "production": `newsletter send`, the Celery workers and beat refuse to start while `newsletter doctor`
    # reports an error (newsletter.doctor.require_ready). Anything else: nothing is gated (the demo, tests).
    env: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: a SQLite file in data_dir
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Prepended to every Redis key (Celery's queues and results, rate limits), so several deployments (or test
    # runs) can share one Redis database.
    redis_key_prefix: str = ""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: SmtpSecurity = SmtpSecurity.none
    smtp_timeout: float = 30.0
    smtp_ca_file: Path | None = None  # CA bundle to verify the server's certificate; empty: the system's

    # Delivery: envelope, signing, pacing, retries (README's table explains each one)
    bounce_address: str = ""  # envelope sender; empty: the From address
    verp: bool = False  # per-recipient signed bounce address: local+<delivery>-<signature>@domain
    unsubscribe_mailbox: str = ""  # the mailto: of List-Unsubscribe; empty: unsubscribe@<From domain>
    dkim_key_path: Path | None = None  # PEM private key; DKIM signing is on when this and the selector are set
    dkim_selector: str = ""
    dkim_domain: str = ""  # empty: the From domain
    send_rate: float = 0.0  # messages per second for the whole system; 0: no cap
    send_rate_shared: bool = False  # share the cap between processes through Redis (redis_url)
    max_attempts: int = 5  # SMTP attempts per delivery before a temporary failure becomes permanent
    retry_base_delay: float = 60.0  # seconds before the first retry; doubles each attempt, with jitter
    retry_max_delay: float = 3600.0
    soft_bounce_limit: int = 3  # consecutive soft bounces that suppress an address
    # SMTP connections one sender (`newsletter send`, a send task) sends over at the same time, a thread each
    smtp_connections: int = Field(1, ge=1, le=32)

    from_address: str = Field("Paper Digest <digest@localhost>", validation_alias="NEWSLETTER_FROM")
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""  # empty: generated once and kept in data_dir/secret_key
    admin_token: str = ""  # empty: admin routes are closed
    rate_limit_store: str = "memory"  # "memory" (one process) or "redis" (shared by all web workers, at redis_url)
    subscribe_limit_per_ip: int = 10  # subscribe / new-link requests per client IP per hour
    subscribe_limit_per_address: int = 3  # subscribe / new-link requests per email address per hour
    admin_login_limit_per_ip: int = 10  # wrong admin tokens per client IP per hour before every attempt is refused
    # Comma-separated addresses (or CIDR networks) of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto
    # are believed; empty: none, every client is who its connection says (loopback included).
    trusted_proxies: str = ""
    postal_address: str = PLACEHOLDER_POSTAL_ADDRESS
    language: str = Field("en", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # the emails' lang (BCP 47)

    # What the scheduled job ingests: comma-separated paths, http(s) URLs and shortcuts expanded per edition date
    # (newsletter.ingest.sources): "hf:daily", "arxiv:<category>,<category>...", "sample" (the bundled corpus).
    sources: str = "hf:daily,arxiv:cs.LG,cs.CL,cs.CV"
    hf_api_url: str = "https://huggingface.co/api/daily_papers"  # hf:daily reads <this>?date=YYYY-MM-DD&limit=100
    arxiv_api_url: str = "https://export.arxiv.org/api/query"  # arxiv:... pages through this
    arxiv_delay_seconds: float = Field(3.0, ge=0)  # at least this long between two arXiv API requests (arXiv asks 3)
    arxiv_page_size: int = Field(200, ge=1, le=2000)  # max_results per arXiv API request
    arxiv_max_pages: int = Field(10, ge=1)  # pages read per arxiv: source and day, at most
    ingest_timeout: float = Field(30.0, gt=0)  # seconds per HTTP request of an ingest
    ingest_max_bytes: int = Field(50_000_000, ge=1000)  # largest source read (after gzip is undone)

    papers_per_email: int = 10
    candidate_days: int = 7  # papers ingested or published this recently are candidates
    semantic: Literal["auto", "off"] = "auto"  # auto: sentence embeddings when the `semantic` extra is installed

    # The distributed schedule (Celery beat; times in UTC, cron syntax "minute hour day month weekday").
    ingest_schedule: str = "30 5 * * *"  # when the configured sources are ingested
    send_tick_seconds: float = 300  # how often the send tick looks for subscribers whose local send hour has come
    weekly_weekday: int = Field(0, ge=0, le=6)  # weekly subscribers get the edition of this local weekday (0 = Monday)
    send_batch_size: int = Field(200, ge=1)  # subscribers planned, and deliveries sent, per Celery task
    delivery_lease_seconds: float = Field(900, gt=0)  # a `sending` row older than this was lost with its sender
    bounce_mailbox: str = ""  # a Maildir or mbox of returned mail that beat processes; empty: no scheduled job
    bounce_check_seconds: float = Field(900, gt=0)  # how often beat processes bounce_mailbox
    # Retention (newsletter.retention): editions older than this many days lose their delivery rows and picks
    # (their figures are kept as tallies); 0 keeps everything. Never shorter than candidate_days.
    retention_days: int = Field(180, ge=0)
    prune_schedule: str = "45 3 * * *"  # when beat prunes (cron, UTC)

    log_level: str = "INFO"
    log_format: str = "text"  # text (key=value) or json

    @field_validator("smtp_ca_file", "dkim_key_path", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value):
        """`NEWSLETTER_DKIM_KEY_PATH=` (empty) means "not set", not the current directory."""
        return None if value == "" else value

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'newsletter.db'}"

    @property
    def delivery_lease(self) -> timedelta:
        return timedelta(seconds=self.delivery_lease_seconds)

    @property
    def signing_key(self) -> str:
        """The configured secret, or one generated on first use and kept beside the database."""
        return self.secret_key or generated_key(self.data_dir.resolve())


@lru_cache(maxsize=16)
def generated_key(data_dir: Path) -> str:
    """The signing key kept in data_dir/secret_key, made (mode 0600) the first time one is needed."""
    key_file = data_dir / "secret_key"
    if not key_file.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment: for long-running edges (Celery workers)."""
    return Settings()


def environment_of(settings: Settings) -> dict[str, str]:
    """`settings` as the NEWSLETTER_* variables that reproduce them in another process (a worker, a CLI run)."""
    variables = {}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        key = field.validation_alias if isinstance(field.validation_alias, str) else f"NEWSLETTER_{name.upper()}"
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, bool):
            value = "true" if value else "false"
        if value is not None:
            variables[key] = str(value)
    return variables

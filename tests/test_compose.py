"""compose.yaml, checked statically (no container engine needed): valid YAML, every command is a real command of
this project, every NEWSLETTER_* variable it sets is a real setting, health checks where others wait on them."""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner, Result
from dotenv import dotenv_values
from typer.testing import CliRunner as TyperCliRunner
from typer.testing import Result as TyperResult

from newsletter.config import Settings
from tests.helpers import ROOT

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = sorted(name for name, service in SERVICES.items() if "build" in service)


def setting_names() -> set[str]:
    prefix = Settings.model_config["env_prefix"]
    return {field.validation_alias if isinstance(field.validation_alias, str) else f"{prefix}{name}".upper()
            for name, field in Settings.model_fields.items()}


def app_environment(service: dict) -> dict[str, str | None]:
    env: dict[str, str | None] = {}
    for env_file in [service["env_file"]] if isinstance(service.get("env_file"), str) else service.get("env_file", []):
        env.update(dotenv_values(ROOT / env_file))
    env.update(service.get("environment") or {})
    return env


def test_the_stack_has_every_part():
    assert set(SERVICES) == {"redis", "postgres", "mailpit", "migrate", "web", "worker", "beat", "flower"}
    assert SERVICES["migrate"]["restart"] == "no" and SERVICES["beat"]["deploy"]["replicas"] == 1
    for name in ("web", "worker", "beat", "flower"):
        assert SERVICES[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_services_waited_on_as_healthy_have_health_checks():
    for name, service in SERVICES.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown service {dependency}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{name} waits for {dependency}'s health check"
    assert {n for n, s in SERVICES.items() if "healthcheck" in s} >= {"redis", "postgres", "mailpit", "web",
                                                                       "worker", "flower"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_command_exists_in_the_project(name, settings):
    command = SERVICES[name]["command"]
    runner = CliRunner()
    result: Result | TyperResult
    if command[0] == "newsletter":
        from newsletter.cli import app

        result = TyperCliRunner().invoke(app, [*command[1:], "--help"])  # typer's own (vendored) click
    else:
        assert command[:3] == ["celery", "-A", "tasks.celery_app"], command
        from celery.bin.celery import celery

        result = runner.invoke(celery, [*command[1:], "--help"])
    assert result.exit_code == 0, f"{name}: {' '.join(command)} is not a valid command:\n{result.output}"


def test_the_health_check_commands_of_our_images_are_real():
    worker_check = SERVICES["worker"]["healthcheck"]["test"][1]
    assert worker_check.startswith("celery -A tasks.celery_app inspect ping")
    for name in ("web", "flower"):
        probe = SERVICES[name]["healthcheck"]["test"]
        found = re.search(r"127\.0\.0\.1:(\d+)", probe[-1])
        assert found is not None, probe
        port = found.group(1)
        assert f"{port}:{port}" in SERVICES[name]["ports"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_variable_set_is_a_real_setting_with_a_valid_value(name, monkeypatch):
    env = app_environment(SERVICES[name])
    ours = {key for key in env if key.startswith("NEWSLETTER_")}
    assert ours, f"{name} sets no NEWSLETTER_* variable"
    assert ours <= setting_names(), f"{name} sets unknown settings: {sorted(ours - setting_names())}"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    configured = Settings(_env_file=None)
    assert configured.sqlalchemy_url.startswith("postgresql+psycopg://") and configured.redis_url.startswith("redis://")
    from tasks.schedule import beat_schedule

    assert {"ingest", "send-tick"} <= set(beat_schedule(configured))


def test_the_image_contains_every_package_of_the_project():
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in packages["packages"]:
        assert f"COPY {package} {package}" in dockerfile


def test_the_env_file_is_a_production_template_reading_real_sources():
    """.env.example is what an operator copies: production (gated on doctor), the real sources by default, and every
    placeholder one that `newsletter doctor` reports, so none can go live unchanged."""
    from newsletter.doctor import ERROR, check_dkim, check_postal_address, check_secrets, check_sender, reserved_name

    values = dotenv_values(ROOT / ".env.example")
    assert values["NEWSLETTER_ENV"] == "production"
    real = "hf:daily,arxiv:cs.LG,cs.CL,cs.CV"
    assert values["NEWSLETTER_SOURCES"] == Settings.model_fields["sources"].default == real
    assert "sample" not in values["NEWSLETTER_SOURCES"]
    fields: dict[str, Any] = {k.removeprefix("NEWSLETTER_").lower(): v for k, v in values.items()
                              if k.startswith("NEWSLETTER_") and k != "NEWSLETTER_FROM" and v is not None}
    template = Settings(_env_file=None, NEWSLETTER_FROM=values["NEWSLETTER_FROM"], **fields)
    assert template.base_url.startswith("https://") and template.smtp_security == "starttls"
    for check in (check_sender, check_secrets, check_postal_address, check_dkim):  # no network: static checks
        assert ERROR in {f.level for f in check(template, date(2026, 6, 1))}, check.__name__
    assert reserved_name(urlsplit(template.base_url).hostname or "")  # doctor: "not a public name"


def test_the_trial_stack_catches_mail_and_is_not_gated():
    for name in APP_SERVICES:
        env = app_environment(SERVICES[name])
        assert env["NEWSLETTER_ENV"] == "development" and env["NEWSLETTER_SMTP_HOST"] == "mailpit"
        assert env["NEWSLETTER_SOURCES"] == "hf:daily,arxiv:cs.LG,cs.CL,cs.CV"

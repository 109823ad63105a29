"""The fault suite (issue 17): an edition sent through real processes while one part of the system fails, counted
at the receiving side. The scenarios live in tests/support/faults.py; `python benchmarks/faults.py` prints the
same figures as a table."""

from __future__ import annotations

import pytest

from tests.conftest import service_unavailable
from tests.support import faults

pytestmark = pytest.mark.redis


@pytest.fixture
def fault_settings(settings):
    reason = faults.RedisServer.unavailable_reason()
    if reason:
        service_unavailable(reason)
    return settings


def report(result: faults.FaultResult) -> faults.FaultResult:
    print(f"\n{result.case}: delivered {result.delivered}/{result.expected}, duplicated {result.duplicated}, "
          f"lost {result.lost}, in flight {result.in_flight}, {result.seconds} s; {result.notes}")
    return result


def assert_sound(result: faults.FaultResult) -> None:
    assert result.lost == 0 and result.delivered == result.expected, result
    assert result.duplicated <= result.in_flight, result
    assert result.unexpected == 0 and result.notes["second_deliveries"] == 0, result
    assert result.notes.get("rows_pending", 0) == result.notes.get("rows_sending", 0) == 0, result


@pytest.mark.slow
def test_smtp_server_down_for_a_minute_mid_edition(fault_settings, tmp_path):
    result = report(faults.smtp_outage(fault_settings, tmp_path))
    assert_sound(result)
    assert result.notes["deferred_while_down"] > 0 and result.notes["received_before_fault"] < result.expected


@pytest.mark.slow
def test_redis_restarted_mid_edition(fault_settings, tmp_path):
    result = report(faults.redis_restart(fault_settings, tmp_path))
    assert_sound(result)
    assert result.notes["ticks_after_restart"] > 0 and result.notes["workers_alive"] == 2
    assert result.notes["received_when_back"] < result.expected  # the rest went through the restarted Redis


@pytest.mark.slow
def test_postgres_restarted_mid_edition(fault_settings, tmp_path):
    reason = faults.PostgresCluster.unavailable_reason()
    if reason:
        service_unavailable(reason)
    result = report(faults.postgres_restart(fault_settings, tmp_path))
    assert_sound(result)
    assert result.notes["tracebacks"] == 0 and result.notes["stop_reasons"], result.notes
    assert all(reason.startswith('"database unreachable: ') for reason in result.notes["stop_reasons"])


def test_an_unrenderable_subscriber_fails_alone(fault_settings, tmp_path):
    result = report(faults.unrenderable_subscriber(fault_settings, tmp_path))
    assert_sound(result)
    assert result.notes["broken_status"] == "failed"
    assert "not a valid internationalized domain" in result.notes["broken_error"]


@pytest.mark.slow
def test_beat_down_three_hours_catches_up_the_missed_hours_once(fault_settings, tmp_path):
    result = report(faults.beat_outage(fault_settings, tmp_path))
    assert_sound(result)
    assert len(result.notes["edition_dates"]) == 1


@pytest.mark.slow
def test_two_beats_send_nothing_twice(fault_settings, tmp_path):
    result = report(faults.two_beats(fault_settings, tmp_path))
    assert_sound(result)
    assert all(ticks > 2 for ticks in result.notes["ticks"])

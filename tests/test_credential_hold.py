"""A refused credential holds the site (cause ``credential``): at its first 401, its probes
backing off, the log reminding once a minute, and the probe reading the credential again."""

from __future__ import annotations

import logging

import pytest

from connector.breaker import CREDENTIAL, CREDENTIAL_PROBE_MAX, SiteBreaker, credential_refused
from connector.errors import JiraAuthError, JiraForbiddenError
from pipeline.holds import Holds, HoldWatch
from pipeline.queue import make_huey
from tests.test_holds import Ticks

SITE = "https://acme.atlassian.net"


@pytest.fixture
def storage(store_settings):
    huey = make_huey(store_settings)
    huey.storage.flush_all()
    return huey.storage


def refused() -> JiraAuthError:
    return JiraAuthError(
        "Jira answered 401", status=401, method="PUT", path="/rest/api/2/issue/SHOP-1",
        messages=("Unauthorized; scope does not match",),
    )  # fmt: skip


def test_the_first_refusal_holds_the_site_and_a_403_does_not(storage):
    ticks = Ticks()
    breaker = SiteBreaker(SITE, storage, probe_seconds=2, clock=ticks)
    assert breaker.failed(JiraForbiddenError("no", status=403)) is None
    hold = breaker.failed(refused())
    assert hold is not None and hold.cause == CREDENTIAL
    assert "scope does not match" in hold.reason
    assert Holds(breaker, storage).holding(refused()) == breaker.current(fresh=True)
    assert not credential_refused(JiraAuthError("not sent", ours=True))


def test_the_probes_of_a_refused_credential_back_off_to_a_minute(storage):
    ticks = Ticks()
    breaker = SiteBreaker(SITE, storage, probe_seconds=2, clock=ticks)
    hold = breaker.failed(refused())
    waits = []
    for _ in range(7):
        assert hold is not None
        breaker.probe_failed(hold, refused())
        hold = breaker.current(fresh=True)
        assert hold is not None
        waits.append(hold.probe_at - ticks.now)
    assert waits == [4, 8, 16, 32, CREDENTIAL_PROBE_MAX, CREDENTIAL_PROBE_MAX, CREDENTIAL_PROBE_MAX]


def test_the_log_says_it_once_a_minute_and_the_probe_lets_go_once_the_credential_works(
    storage, caplog
):
    ticks = Ticks()
    breaker = SiteBreaker(SITE, storage, probe_seconds=1, refresh=0, clock=ticks)
    holds = Holds(breaker, storage)
    works = [False]
    counted = []

    def probe() -> None:
        if not works[0]:
            raise refused()

    released = []
    watch = HoldWatch(
        holds,
        probes={CREDENTIAL: probe},
        release=released.extend,
        refused=lambda: counted.append(1),
        clock=ticks,
    )
    breaker.failed(refused())
    caplog.set_level(logging.ERROR, logger="pipeline.holds")
    for _ in range(150):  # two and a half minutes, a tick a second
        ticks.now += 1
        watch.tick()
    reminders = [r for r in caplog.records if "still refuses" in r.getMessage()]
    assert len(reminders) == 2  # at 60 s and at 120 s, not once a tick
    assert counted  # each refused probe counted
    assert breaker.current(fresh=True) is not None
    works[0] = True
    for _ in range(int(CREDENTIAL_PROBE_MAX) + 1):
        ticks.now += 1
        watch.tick()
    assert breaker.current(fresh=True) is None

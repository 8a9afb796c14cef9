"""The pace a worker process keeps with Jira: calls in flight, calls a second, and how it adapts
to 429s, with a clock the tests move (``Pace.turn``), and once with real threads."""

from __future__ import annotations

import threading
import time

import pytest

from connector.pace import CUT, FLOOR, PER_ISSUE_REASON, NoTurnError, Pace


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def starts(pace: Pace, clock: Clock, calls: int) -> list[float]:
    """When each of ``calls`` calls may start, one after the other, each ending at once."""
    begun = []
    for _ in range(calls):
        while (wait := pace.turn(clock.now)) > 0:
            clock.now += wait
        begun.append(round(clock.now - 1000.0, 6))
        pace.done()
    return begun


def test_calls_are_spread_evenly_at_the_rate() -> None:
    clock = Clock()
    pace = Pace(max_in_flight=4, rate=20.0, clock=clock)
    assert starts(pace, clock, 5) == [0.0, 0.05, 0.1, 0.15, 0.2]


def test_no_more_calls_in_flight_than_the_cap() -> None:
    clock = Clock()
    pace = Pace(max_in_flight=2, rate=1000.0, clock=clock)
    assert pace.turn(clock.now) == 0.0
    clock.now += 1
    assert pace.turn(clock.now) == 0.0
    clock.now += 1
    assert pace.turn(clock.now) == float("inf")  # until one of the two ends
    pace.done()
    assert pace.turn(clock.now) == 0.0
    assert pace.in_flight == 2


def test_a_burst_429_pauses_every_call_for_retry_after_and_slows_down() -> None:
    clock = Clock()
    pace = Pace(max_in_flight=4, rate=20.0, clock=clock)
    assert pace.refused(3.0, "jira-burst-based") == 3.0
    assert pace.turn(clock.now) == pytest.approx(3.0)  # every thread waits as long
    assert pace.rate == pytest.approx(20.0 * CUT)
    clock.now += 3.0
    assert starts(pace, clock, 2) == [3.0, 3.0 + 1 / (20.0 * CUT)]


def test_calls_refused_together_slow_the_pace_once() -> None:
    clock = Clock()
    pace = Pace(max_in_flight=4, rate=20.0, clock=clock)
    for _ in range(4):  # four calls in flight, all answered 429 within the pause
        pace.refused(1.0, "jira-burst-based")
        clock.now += 0.1
    assert pace.rate == pytest.approx(20.0 * CUT)
    clock.now += 1.0
    pace.refused(1.0, "jira-burst-based")  # a new pause: a new cut
    assert pace.rate == pytest.approx(20.0 * CUT * CUT)


def test_a_429_for_one_issues_writes_holds_back_that_call_only() -> None:
    clock = Clock()
    pace = Pace(max_in_flight=4, rate=20.0, clock=clock)
    assert pace.refused(2.0, PER_ISSUE_REASON) == 2.0
    assert pace.turn(clock.now) == 0.0  # the other calls go on
    assert pace.rate == 20.0


def test_the_rate_grows_back_while_calls_succeed_and_holds_near_the_limit() -> None:
    clock = Clock()
    pace = Pace(max_in_flight=4, rate=20.0, clock=clock)
    for _ in range(20):
        clock.now += pace.refused(None, None)  # a 429 that says nothing: one second, slower
    assert pace.rate == pytest.approx(20.0 * FLOOR)
    near = pace.rate
    for _ in range(50):
        pace.answered(200, {"X-RateLimit-NearLimit": "true"})
    assert pace.rate == near  # held where it is while Jira says the budget is nearly spent
    for _ in range(400):
        pace.answered(200, {})
    assert pace.rate == 20.0  # never past the cap


def test_threads_together_keep_to_the_cap_in_flight() -> None:
    pace = Pace(max_in_flight=3, rate=10_000.0)
    seen = []
    lock = threading.Lock()

    def call() -> None:
        with pace.slot():
            with lock:
                seen.append(pace.in_flight)
            time.sleep(0.005)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(seen) == 12 and max(seen) <= 3 and pace.in_flight == 0


def test_a_slot_with_a_timeout_gives_up_at_once_when_the_pause_outlasts_it() -> None:
    clock = Clock()
    pace = Pace(max_in_flight=4, rate=20.0, clock=clock)
    pace.refused(30.0, "jira-burst-based")
    with pytest.raises(NoTurnError) as caught, pace.slot(timeout=5.0):
        pass
    assert caught.value.wait == pytest.approx(30.0)  # for the caller's retry
    assert pace.in_flight == 0  # no turn was taken
    clock.now += 30.0
    with pace.slot(timeout=5.0):  # the pause is over: a turn at once
        assert pace.in_flight == 1


def test_a_slot_with_a_timeout_waits_that_long_for_a_call_in_flight_to_end() -> None:
    pace = Pace(max_in_flight=1, rate=1000.0)
    started = time.monotonic()
    with pace.slot(), pytest.raises(NoTurnError) as caught, pace.slot(timeout=0.2):
        pass
    assert 0.2 <= time.monotonic() - started < 5.0
    assert caught.value.wait is None  # nobody knows when the call in flight ends
    with pace.slot(timeout=0.2):  # the first call ended: a turn at once
        assert pace.in_flight == 1


def test_a_slot_with_a_timeout_takes_the_turn_a_call_ending_in_time_frees() -> None:
    pace = Pace(max_in_flight=1, rate=1000.0)
    took: list[float] = []
    holding = threading.Event()

    def first() -> None:
        with pace.slot():
            holding.set()
            time.sleep(0.2)

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait(5)
    started = time.monotonic()
    with pace.slot(timeout=10.0):
        took.append(time.monotonic() - started)
    thread.join(5)
    assert took and 0.1 <= took[0] < 5.0  # woken when the first call ended, not at the timeout

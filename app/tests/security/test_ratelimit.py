from __future__ import annotations

from securechat.security.ratelimit import SlidingWindowLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_slides() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(3, 60, clock)
    assert [limiter.hit("ip") for _ in range(3)] == [None, None, None]
    assert limiter.hit("ip") == 60
    assert limiter.hit("other") is None
    clock.now += 30
    assert limiter.retry_after("ip") == 30
    clock.now += 30.5
    assert limiter.hit("ip") is None


def test_reset_and_memory_bound() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(1, 10, clock)
    limiter.hit("a")
    limiter.reset("a")
    assert limiter.hit("a") is None
    for index in range(20_000):
        limiter.hit(f"flood-{index}")
    clock.now += 11
    limiter.hit("late-1")
    limiter.hit("late-2")
    assert len(limiter._events) < 20_000

"""The token bucket behind the per-connection rate limit."""

import pytest

from chat.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refuses():
    bucket = TokenBucket(capacity=10, rate=5, clock=FakeClock())
    assert [bucket.take() for _ in range(11)] == [True] * 10 + [False]


def test_bucket_refills_at_its_rate_up_to_capacity():
    clock = FakeClock()
    bucket = TokenBucket(capacity=10, rate=5, clock=clock)
    for _ in range(10):
        bucket.take()
    clock.now += 0.2  # One token.
    assert bucket.take()
    assert not bucket.take()
    clock.now += 60  # Far more than capacity.
    assert sum(bucket.take() for _ in range(20)) == 10


@pytest.mark.parametrize(("capacity", "rate"), [(0, 1), (1, 0), (-1, 1)])
def test_bucket_refuses_non_positive_settings(capacity, rate):
    with pytest.raises(ValueError):
        TokenBucket(capacity=capacity, rate=rate)

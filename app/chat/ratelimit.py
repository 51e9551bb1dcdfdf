"""A token bucket, to rate limit the frames of one WebSocket connection."""

import time
from collections.abc import Callable


class TokenBucket:
    """Allow bursts of ``capacity`` events, then ``rate`` events per second.

    Not thread-safe: meant for one consumer, which handles its frames one at a time.
    """

    def __init__(
        self,
        capacity: float,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start full.

        Args:
            capacity: tokens the bucket holds, i.e. the largest burst.
            rate: tokens added per second, up to ``capacity``.
            clock: monotonic time in seconds (replace it in tests).

        Raises:
            ValueError: capacity or rate is not positive.
        """
        if capacity <= 0 or rate <= 0:
            raise ValueError("capacity and rate must be positive")
        self.capacity = capacity
        self.rate = rate
        self._clock = clock
        self._tokens = capacity
        self._updated = clock()

    def take(self) -> bool:
        """Take one token: True if there was one, False if the caller is over the limit."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

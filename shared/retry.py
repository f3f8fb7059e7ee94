"""The project's one retry policy: truncated exponential back-off with full jitter.

Built on google.api_core.retry (the policy the Google client libraries themselves use:
https://cloud.google.com/storage/docs/exponential-backoff), so every
loop that tries something again waits the same way and is written once. Each caller
builds a `Policy` once, naming what it retries and on which exceptions:

    CONFLICTS = Policy("a write that met another writer", retry_on=(WriteRaced,), initial=0.02, maximum=1.0)
    value = CONFLICTS.call(write_once, attempts=8)      # Exhausted after 8 tries

The sleep before retry n (n = 1, 2, ...) is uniform in [0, min(maximum, initial x multiplier^(n-1))]
(api_core's exponential_sleep_generator): contenders that collided once spread apart
instead of colliding again. An exception the policy does not name goes straight to the
caller. When the attempts (or the `timeout`, measured from the first try) run out,
`Exhausted` is raised with the last error as its cause, and the caller turns it into its
own domain error. `Policy.retry` is the same policy as a Retry object, for a Google
client's per-call `retry=` argument.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from typing import Callable, Iterator, TypeVar

from google.api_core import retry as api_retry

T = TypeVar("T")


class Exhausted(Exception):
    """A policy gave up: `last` is the error of the final attempt."""

    def __init__(self, what: str, attempts: int, last: BaseException | None):
        super().__init__(f"{what}: gave up after {attempts} attempts ({type(last).__name__ if last else 'timeout'})")
        self.what = what
        self.attempts = attempts
        self.last = last


@dataclasses.dataclass(frozen=True)
class Policy:
    what: str  # what is retried, for messages and logs
    retry_on: tuple[type[BaseException], ...]
    initial: float = 0.02
    maximum: float = 1.0
    multiplier: float = 2.0
    timeout: float | None = None
    # False: the pauses are exactly initial x multiplier^(n-1) (a hand-off to one callee,
    # where spreading contenders apart buys nothing and tests name the schedule).
    jitter: bool = True

    @functools.cached_property
    def retry(self) -> api_retry.Retry:
        """The same policy as a Retry object, built once (for a Google client's `retry=` argument)."""
        return api_retry.Retry(
            predicate=api_retry.if_exception_type(*self.retry_on),
            initial=self.initial,
            maximum=self.maximum,
            multiplier=self.multiplier,
            timeout=self.timeout,
        )

    def call(
        self,
        fn: Callable[[], T],
        attempts: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        wait_hint: Callable[[BaseException], float | None] | None = None,
        retry_if: Callable[[BaseException], bool] | None = None,
        budget: float | None = None,
        on_retry: Callable[[int, BaseException, float], None] | None = None,
    ) -> T:
        """fn() until it returns or raises something not in `retry_on`; Exhausted when out of tries.

        `sleep` is injectable (tests record the pauses instead of waiting); `wait_hint(exc)`
        may name a longer pause the failure asked for (a Retry-After header); `retry_if(exc)`
        narrows `retry_on` (a failure it refuses goes straight to the caller); `budget` bounds
        the seconds slept in all; `on_retry(attempt, exc, delay)` hears of each retry.
        """
        delays = self._delays()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        slept = 0.0
        for tried in itertools.count(1):
            try:
                return fn()
            except self.retry_on as exc:
                if retry_if is not None and not retry_if(exc):
                    raise
                delay = next(delays)
                hinted = wait_hint(exc) if wait_hint is not None else None
                if hinted is not None:
                    delay = max(delay, hinted)
                out_of_time = (deadline is not None and time.monotonic() + delay > deadline) or (
                    budget is not None and slept + delay > budget)
                if (attempts is not None and tried >= attempts) or out_of_time:
                    raise Exhausted(self.what, tried, exc) from exc
                if on_retry is not None:
                    on_retry(tried, exc, delay)
                sleep(delay)
                slept += delay
        raise AssertionError("unreachable")

    def _delays(self) -> Iterator[float]:
        if self.jitter:
            return api_retry.exponential_sleep_generator(self.initial, self.maximum, self.multiplier)
        return (min(self.maximum, self.initial * self.multiplier**n) for n in itertools.count())

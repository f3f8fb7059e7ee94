"""The project's one retry policy: truncated exponential back-off with full jitter.

Built on google.api_core.retry (the policy the Google client libraries themselves use:
https://cloud.google.com/storage/docs/retry-strategy#exponential-backoff), so every
loop that tries something again waits the same way and is written once. Each caller
builds a `Policy` once, naming what it retries and on which exceptions:

    CONFLICTS = Policy("a write that met another writer", retry_on=(WriteRaced,), initial=0.02, maximum=1.0)
    value = CONFLICTS.call(write_once, attempts=8)      # Exhausted after 8 tries

The sleep before retry n (n = 1, 2, ...) is uniform in [0, min(maximum, initial x multiplier^(n-1))]:
contenders that collided once spread apart instead of colliding again. An exception
the policy does not name goes straight to the caller. When the attempts (or the
`timeout`, measured from the first try) run out, `Exhausted` is raised with the last
error as its cause, and the caller turns it into its own domain error.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Callable, TypeVar

from google.api_core import exceptions as gexc
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

    @functools.cached_property
    def retry(self) -> api_retry.Retry:
        """Built once per policy (cached_property writes the instance dict, frozen or not)."""
        return api_retry.Retry(
            predicate=api_retry.if_exception_type(*self.retry_on),
            initial=self.initial,
            maximum=self.maximum,
            multiplier=self.multiplier,
            timeout=self.timeout,
        )

    def call(self, fn: Callable[[], T], attempts: int | None = None) -> T:
        """fn() until it returns or raises something not in `retry_on`; Exhausted when out of tries."""
        counter = itertools.count(1)
        last: list[BaseException] = []

        def once() -> T:
            tried = next(counter)
            try:
                return fn()
            except self.retry_on as exc:
                last[:] = [exc]
                if attempts is not None and tried >= attempts:
                    raise Exhausted(self.what, tried, exc) from exc
                raise

        try:
            return self.retry(once)()
        except gexc.RetryError as exc:  # the timeout, not the attempts, ran out
            raise Exhausted(self.what, next(counter) - 1, last[0] if last else None) from exc


"""One retry helper for every optimistic-concurrency loop in the write model.

A step loads, decides and saves; when its save loses a race it raises
``TryAgain`` and runs again on fresh state, after a short random back-off so
that competing writers spread out. Only lost races count as attempts; a step
that merely needs to look again (follow a merge, reload a cached copy) raises
``TryAgain(race=False)``, which runs it again at once (bounded too, by the same
number, so a loop that never settles still ends).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from commands.errors import ConcurrencyError

MAX_ATTEMPTS = 20
T = TypeVar("T")


class TryAgain(Exception):
    """Raised by a step whose work must be redone on fresh state."""

    def __init__(self, *, race: bool = True) -> None:
        super().__init__("try again")
        self.race = race


def retrying(step: Callable[[int], T], *, gave_up: str, attempts: int = MAX_ATTEMPTS) -> T:
    """Run ``step(races_lost_so_far)`` until it returns; ``ConcurrencyError`` when it keeps losing."""
    cause: TryAgain | None = None
    attempt = looks = 0
    while attempt < attempts and looks < attempts:
        try:
            return step(attempt)
        except TryAgain as again:
            cause = again
            if again.race:
                attempt += 1
                time.sleep(random.uniform(0, 0.002 * attempt))
            else:
                looks += 1
    raise ConcurrencyError(f"{gave_up}; gave up after {attempts} attempts") from cause

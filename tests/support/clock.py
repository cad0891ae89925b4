"""A controllable clock for the sandbox CRM in tests."""
from __future__ import annotations

import time


class StepClock:
    """The sandbox CRM's clock in a test: each `tick` a second and a half later, so the timestamps of
    successive changes (update_time, won_time ... have one-second resolution) differ whatever the
    CPU speed. Plug it in with `pd.clock = StepClock()`."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += 1.5

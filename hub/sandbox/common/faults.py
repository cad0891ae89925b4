"""Fault knobs an operator or a test turns on an emulator: latency, 5xx, 429 bursts, webhook chaos.

Each emulator asks `decide()` before serving an API request and renders the answer in its own
provider's error format; the knobs are plain attributes, changed through `/_sandbox/faults`."""
from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class FaultSettings:
    latency_ms: float = 0.0          # added to every API request
    error_rate: float = 0.0          # share of API requests answered with a 5xx
    error_status: int = 503
    burst_429: int = 0               # the next N API requests get 429
    retry_after: int = 1             # seconds announced with a 429
    webhook_duplicate_rate: float = 0.0  # share of webhook deliveries sent twice (same event id)
    webhook_reorder_rate: float = 0.0    # share of deliveries held back and sent after the next one
    webhooks_paused: bool = False        # deliveries queue up but are not sent
    strict_refresh: bool = False         # every refresh rotates the refresh token; reuse -> invalid_grant


class Faults:
    def __init__(self, seed: int | None = None, **settings: Any):
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self.random = random.Random(seed)
        self.api_requests = 0            # API requests seen (tests count what a client really sent)
        self.update(settings)

    def update(self, values: dict[str, Any]) -> dict[str, Any]:
        """Apply known knobs; raises ValueError naming an unknown or ill-typed knob."""
        known = {f.name: f.type for f in fields(FaultSettings)}
        with self._lock:
            for key, value in values.items():
                if key not in known:
                    raise ValueError(f"unknown fault setting: {key}")
                current = getattr(self.settings, key)
                try:
                    if isinstance(current, bool):
                        if isinstance(value, str):
                            value = value.lower() in ("1", "true", "yes", "on")
                        value = bool(value)
                    else:
                        value = type(current)(value)
                except (TypeError, ValueError):
                    raise ValueError(f"fault setting {key}: expected {type(current).__name__}") from None
                setattr(self.settings, key, value)
            return asdict(self.settings)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self.settings)

    def decide(self) -> tuple[str, int] | None:
        """Sleep for the latency knob, then say whether this API request fails: ('429'|'5xx', status)."""
        s = self.settings
        with self._lock:
            self.api_requests += 1
        if s.latency_ms > 0:
            time.sleep(s.latency_ms / 1000.0)
        with self._lock:
            if s.burst_429 > 0:
                s.burst_429 -= 1
                return ("429", 429)
            if s.error_rate > 0 and self.random.random() < s.error_rate:
                return ("5xx", s.error_status)
        return None

    def roll(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self.random.random() < rate

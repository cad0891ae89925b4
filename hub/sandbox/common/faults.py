"""Fault knobs an operator or a test turns on an emulator: latency, 5xx, 429 bursts, webhook chaos.

Each emulator asks `decide()` before serving an API request and renders the answer in its own
provider's error format; the knobs are plain attributes, changed through `/_sandbox/faults`.
An emulator adds knobs only it understands with `extend()`: they are listed, validated and set
through the same route and CLI, and read with `knob()` / consumed one at a time with `take()`."""
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
    webhook_reorder_rate: float = 0.0    # share of deliveries held back until a later one of their object is sent
    webhooks_paused: bool = False        # deliveries queue up but are not sent
    strict_refresh: bool = False         # every refresh rotates the refresh token; reuse -> invalid_grant


class Faults:
    def __init__(self, seed: int | None = None, **settings: Any):
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self.random = random.Random(seed)
        self.extra: dict[str, Any] = {}
        self.api_requests = 0            # API requests seen (tests count what a client really sent)
        self.update(settings)

    def extend(self, **defaults: Any) -> None:
        """Register emulator-specific knobs with their defaults (their type is the default's)."""
        with self._lock:
            for key, value in defaults.items():
                self.extra.setdefault(key, value)

    def knob(self, name: str) -> Any:
        return self.extra[name]

    def take(self, name: str) -> bool:
        """Consume one unit of a counting knob ("the next N ..."): True when one was left."""
        with self._lock:
            if self.extra.get(name, 0) > 0:
                self.extra[name] -= 1
                return True
            return False

    def update(self, values: dict[str, Any]) -> dict[str, Any]:
        """Apply known knobs; raises ValueError naming an unknown or ill-typed knob."""
        known = {f.name for f in fields(FaultSettings)}
        with self._lock:
            for key in values:
                if key not in known and key not in self.extra:
                    raise ValueError(f"unknown fault setting: {key}")
            for key, value in values.items():
                current = self.extra[key] if key in self.extra else getattr(self.settings, key)
                try:
                    if isinstance(current, bool):
                        if isinstance(value, str):
                            value = value.lower() in ("1", "true", "yes", "on")
                        value = bool(value)
                    else:
                        value = type(current)(value)
                except (TypeError, ValueError):
                    raise ValueError(f"fault setting {key}: expected {type(current).__name__}") from None
                if key in self.extra:
                    self.extra[key] = value
                else:
                    setattr(self.settings, key, value)
            return {**asdict(self.settings), **self.extra}

    def update_from_form(self, form: Any) -> dict[str, Any]:
        """A sandbox page's knob form: the knobs it names, and every on/off knob it leaves unchecked
        (a browser sends nothing for an unchecked box). ValueError as `update`."""
        current = self.as_dict()
        values = {k: v for k, v in form.items() if k in current}
        values.update({k: k in form for k, v in current.items() if isinstance(v, bool)})
        return self.update(values)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self.settings), **self.extra}

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

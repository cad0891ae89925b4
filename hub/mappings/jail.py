"""The render process: `python -m hub.mappings.jail <memory_mb>`, started and watched by `pool.py`.

It renders templates one job at a time for its parent, with an address-space limit of its baseline
plus `memory_mb` (so no allocation, however made, takes more) and, as a backstop for a parent that
went away, an RLIMIT_CPU just above each job's budget. The parent measures the job's CPU time and
kills this process on overrun: a single C call cannot be interrupted from inside, only from outside.

Protocol on stdin/stdout, each message a 4-byte big-endian length and a body:
- parent -> child: pickle of (the fields of Limits, context, jobs), a job being (html, source, known_names or None);
  known names ask for the save-time check before the trial render.
- child -> parent: one JSON object per job, {"ok", "text", "cpu", "memory"}, then the next job;
  a first message {"ready": true, "cpu", "memory"} once the limits are set. After running out of memory
  it answers with "exit": true and exits."""
from __future__ import annotations

import json
import os
import pickle
import resource
import struct
import sys
import time
from typing import Any

from .render import Limits, Renderer, TemplateProblem

_HEADER = struct.Struct(">I")
_WARM_UP = ("{% for n in notes %}{{ loop.index }} {{ n.content|striptags|truncate(20)|upper|title }}{% endfor %}"
            "{{ deal.title ~ '' }}{{ '%s %d'|format('a', 1) }}{{ '{:>3}'.format(1) }}{{ deal|tojson }}"
            "{{ [1, 2]|sort|join(',') }}{{ deal.value|default('-', true)|e }}{{ deal|pprint }}{{ 2 ** 3 }}")


def _read_exact(fd: int, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def _write(fd: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    view = memoryview(_HEADER.pack(len(body)) + body)
    while view:
        view = view[os.write(fd, view):]


_STATUS = os.open("/proc/self/status", os.O_RDONLY)


def _status_bytes(field: bytes) -> int:
    status = os.pread(_STATUS, 8192, 0)
    start = status.index(field) + len(field)
    return int(status[start:status.index(b"kB", start)]) * 1024


def _peak() -> int:
    """Peak address space of this process (VmPeak): what RLIMIT_AS bounds, and at least the peak
    resident memory. getrusage's ru_maxrss would include the parent's size inherited through exec."""
    return _status_bytes(b"VmPeak:")


class _Renderers:
    """Renderers by (limits, html), each keeping its compiled templates."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[Limits, bool], Renderer] = {}

    def get(self, limits: Limits, html: bool) -> Renderer:
        renderer = self._by_key.get((limits, html))
        if renderer is None:
            if len(self._by_key) > 16:
                self._by_key.clear()
            renderer = self._by_key[(limits, html)] = Renderer(limits, html=html)
        return renderer


def _run(renderers: _Renderers, limits: Limits, context: dict, job: tuple) -> tuple[bool, str]:
    html, source, known_names = job
    renderer = renderers.get(limits, html)
    try:
        if known_names is not None:
            renderer.check(source, known_names)
        return True, renderer.render(source, context)
    except TemplateProblem as exc:
        return False, str(exc)
    except MemoryError:
        raise _OutOfMemory(f"the template needs more than the limit of {limits.memory_mb} MB of memory") from None
    except Exception as exc:          # noqa: BLE001 - whatever a template provokes is its refusal, not our crash
        return False, f"the template could not be rendered ({type(exc).__name__}: {exc})"[:500]


class _OutOfMemory(Exception):
    """After a MemoryError the heap may stay grown or fragmented: answer, then make way for a fresh process."""


class _CpuBackstop:
    """RLIMIT_CPU a little above what the running job may use: it only matters if the parent went
    away (the parent's own measurement acts first). Raised only when the soft limit gets near, so
    most jobs cost no system call here."""

    def __init__(self) -> None:
        self.soft = 0

    def before_job(self, now: float, seconds: float) -> None:
        if now + seconds + 1 > self.soft:
            self.soft = int(now + seconds) + 3
            resource.setrlimit(resource.RLIMIT_CPU, (self.soft, resource.RLIM_INFINITY))


def _limit_memory(memory_mb: int) -> int:
    size = _status_bytes(b"VmSize:")
    resource.setrlimit(resource.RLIMIT_AS, (size + memory_mb * 1024 * 1024,) * 2)
    return size


def main(argv: list[str]) -> int:
    memory_mb = int(argv[1])
    # the protocol gets its own descriptors; anything printed by accident goes to stderr
    inp, out = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    os.close(0)
    renderers = _Renderers()
    sample = {"deal": {"title": "Warm-up", "value": None}, "notes": [{"content": "<p>note</p>"}]}
    for html in (False, True):       # imports and first-use allocations happen before the limit
        _run(renderers, Limits(), sample, (html, _WARM_UP, ["deal", "notes"]))
    baseline = _limit_memory(memory_mb)
    _write(out, {"ready": True, "cpu": time.process_time(), "memory": baseline})
    backstop, now = _CpuBackstop(), time.process_time()
    while True:
        try:
            size = _HEADER.unpack(_read_exact(inp, _HEADER.size))[0]
            limit_fields, context, jobs = pickle.loads(_read_exact(inp, size))
        except EOFError:
            return 0
        limits = Limits(*limit_fields)
        for job in jobs:
            backstop.before_job(now, limits.seconds)
            try:
                ok, text = _run(renderers, limits, context, job)
            except _OutOfMemory as exc:
                _write(out, {"ok": False, "text": str(exc), "cpu": time.process_time(), "memory": _peak(),
                             "exit": True})
                return 0
            now = time.process_time()
            _write(out, {"ok": ok, "text": text, "cpu": now, "memory": _peak()})


if __name__ == "__main__":
    sys.exit(main(sys.argv))

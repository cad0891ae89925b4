"""Render processes (`jail.py`) for the hub's threads: started lazily, one per concurrently rendering
thread up to a small maximum, each watched for its CPU time and replaced after it is killed.

Why a process: a template's single C call (a big-integer power, a huge format width) cannot be
interrupted from inside the process that runs it, and it holds the GIL, so in-process it would stall
the web, the worker and the scheduler together. Here the calling thread waits on a pipe (`poll`,
no GIL held) while the child renders; it reads the child's CPU time from /proc when the child is
slow and kills it once it used the budget. CPU time, not wall time: a busy machine slows the child
but does not make it use more CPU, so the same template gets the same answer. A fork of the
multi-threaded hub would inherit its locks in unknown states; a fresh interpreter does not."""
from __future__ import annotations

import atexit
import json
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from ..errors import Retriable
from . import direct as _direct
from .render import Limits

log = logging.getLogger("hub.mappings")
_HEADER = struct.Struct(">I")
_ROOT = Path(__file__).resolve().parents[2]       # the directory holding the `hub` package in use
_TICKS = os.sysconf("SC_CLK_TCK")
STARTUP_SECONDS = 60.0       # wall time for a new render process to import and warm up, even on a busy host
POOL_SIZE = max(4, 2 * (os.cpu_count() or 1))


def _child_env() -> dict[str, str]:
    """Only what an interpreter needs: the hub's secrets (HUB_SECRET_KEYS, database URL ...) stay
    out of the process that runs admins' templates."""
    keep = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "PYTHONHOME", "TMPDIR")
    return {k: v for k, v in os.environ.items() if k in keep}


class RenderUnavailable(Retriable):
    """No render process could be started: a fault of the host, not of the template, so the job
    that needed it is retried with backoff."""


@dataclass(frozen=True)
class Job:
    html: bool
    source: str
    known_names: tuple[str, ...] | None = None    # given: the save-time check runs before the render


@dataclass(frozen=True)
class Outcome:
    text: str | None             # the rendered text, or None when refused
    problem: str | None          # the refusal, one line
    cpu_seconds: float           # CPU time the render process spent on this job (in-process: the thread's)
    peak_memory: int             # the render process's peak address space so far (VmPeak), in bytes (in-process: 0)
    baseline_memory: int         # its address space when it became ready (the limit is this + memory_mb; in-process: 0)


class _Lost(Exception):
    def __init__(self, problem: str, cpu: float):
        super().__init__(problem)
        self.problem, self.cpu = problem, cpu


class _Child:
    def __init__(self, memory_mb: int):
        self.memory_mb = memory_mb
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "hub.mappings.jail", str(memory_mb)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(_ROOT),
                                         env=_child_env(), close_fds=True, start_new_session=True)
        except OSError as exc:
            raise RenderUnavailable(f"cannot start a render process: {exc}") from None
        self.rfd, self.wfd = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        self.poller = select.poll()
        self.poller.register(self.rfd, select.POLLIN)
        self.buffer = bytearray()
        self.cpu = 0.0
        try:
            hello = self._message(None, STARTUP_SECONDS)
        except _Lost as exc:
            self.kill()
            raise RenderUnavailable(f"the render process did not start: {exc.problem}") from None
        self.cpu, self.baseline_memory = hello["cpu"], hello["memory"]

    # -- measuring ------------------------------------------------------------------------------
    def _cpu(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def peak_memory(self) -> int:
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmPeak:"))
        except (OSError, StopIteration):
            return 0

    def kill(self) -> float | None:
        """Kill and reap; the CPU time (s) it used in all, overrun after the last look included, when
        this call reaped it (os.wait4 reports it exactly)."""
        usage = None
        if self.proc.returncode is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, status, rusage = os.wait4(self.proc.pid, 0)
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            usage = rusage.ru_utime + rusage.ru_stime
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        return usage

    # -- talking --------------------------------------------------------------------------------
    def _message(self, budget: float | None, wall: float) -> dict[str, Any]:
        """The next message; while it is awaited, the child may use `budget` seconds of CPU time
        (checked whenever a wait of the remaining budget passes: CPU time cannot grow faster)."""
        started, base = time.monotonic(), self.cpu
        wait = budget if budget is not None else wall
        while True:
            if len(self.buffer) >= _HEADER.size:
                size = _HEADER.unpack_from(self.buffer)[0]
                if len(self.buffer) >= _HEADER.size + size:
                    body = bytes(self.buffer[_HEADER.size:_HEADER.size + size])
                    del self.buffer[:_HEADER.size + size]
                    return json.loads(body)
            if self.poller.poll(max(wait, 0.005) * 1000):
                chunk = os.read(self.rfd, 1 << 20)
                if not chunk:
                    raise _Lost(self._death_reason(), 0.0)
                self.buffer += chunk
                continue
            elapsed = time.monotonic() - started
            if budget is not None:
                used = self._cpu() - base
                if used >= budget:
                    raise _Lost(f"rendering took more than the limit of {budget:g} s of CPU time "
                                "(a loop or a value too large?)", used)
                wait = budget - used
            else:
                wait = wall - elapsed
            if elapsed > wall:
                raise _Lost(f"the render process did not answer within {wall:g} s", 0.0)

    def _death_reason(self) -> str:
        """Why the child closed its pipe; it is left unreaped (WNOWAIT) so `kill` can read its usage."""
        info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT)
        killed = info is not None and info.si_code in (os.CLD_KILLED, os.CLD_DUMPED)
        if killed and info.si_status == signal.SIGXCPU:
            return "rendering took more than its CPU-time limit"
        if killed and info.si_status == signal.SIGSEGV:
            return "the template nests too deeply"
        return f"the template needs more than the limit of {self.memory_mb} MB of memory"

    def run(self, limits: Limits, context: dict[str, Any], jobs: list[Job]) -> tuple[list[Outcome], bool]:
        """Outcomes of the jobs in order, and whether the child is still usable; a child that
        overran is killed and the outcomes stop at the job that overran."""
        body = pickle.dumps((astuple(limits), context, [(j.html, j.source, j.known_names) for j in jobs]), protocol=5)
        view = memoryview(_HEADER.pack(len(body)) + body)
        try:
            while view:
                view = view[os.write(self.wfd, view):]
        except OSError:
            self.kill()
            return [], False
        outcomes: list[Outcome] = []
        wall = 30.0 + 20 * limits.seconds
        for _ in jobs:
            start = self.cpu
            try:
                msg = self._message(limits.seconds, wall)
            except _Lost as lost:
                cpu, peak = lost.cpu, self.peak_memory()
                usage = self.kill()
                if usage is not None:
                    cpu = usage - start
                outcomes.append(Outcome(None, lost.problem, cpu, peak, self.baseline_memory))
                log.warning("template render process %s stopped after %.2f s of CPU time: %s",
                            self.proc.pid, cpu, lost.problem)
                return outcomes, False
            self.cpu = msg["cpu"]
            outcomes.append(Outcome(msg["text"] if msg["ok"] else None, None if msg["ok"] else msg["text"],
                                    msg["cpu"] - start, msg["memory"], self.baseline_memory))
            if msg.get("exit"):
                self.kill()
                return outcomes, False
        return outcomes, True


class RenderPool:
    """Render processes of one memory limit."""

    def __init__(self, memory_mb: int, size: int = POOL_SIZE):
        self.memory_mb, self.size = memory_mb, size
        self._idle: list[_Child] = []
        self._count = 0
        self._cond = threading.Condition()

    def _acquire(self) -> _Child:
        with self._cond:
            while not self._idle and self._count >= self.size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return _Child(self.memory_mb)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, child: _Child, usable: bool) -> None:
        with self._cond:
            if usable:
                self._idle.append(child)
            else:
                self._count -= 1
            self._cond.notify()

    def run(self, limits: Limits, context: dict[str, Any], jobs: list[Job]) -> list[Outcome]:
        """Each job's outcome; the jobs after one that cost its process run in a fresh one."""
        outcomes: list[Outcome] = []
        failed_writes = 0
        while len(outcomes) < len(jobs):
            child = self._acquire()
            usable = False
            try:
                got, usable = child.run(limits, context, jobs[len(outcomes):])
            finally:
                self._release(child, usable)
            if not got:
                failed_writes += 1
                if failed_writes > 1:
                    raise RenderUnavailable("the render process stopped before reading its job")
            outcomes += got
        return outcomes

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for child in idle:
            child.kill()

    def pids(self) -> list[int]:
        """The idle render processes (for tests and diagnostics)."""
        with self._cond:
            return [c.proc.pid for c in self._idle]


_pools: dict[int, RenderPool] = {}
_pools_lock = threading.Lock()


def pool_for(memory_mb: int) -> RenderPool:
    with _pools_lock:
        pool = _pools.get(memory_mb)
        if pool is None:
            pool = _pools[memory_mb] = RenderPool(memory_mb)
        return pool


def render(limits: Limits, context: dict[str, Any], jobs: list[Job]) -> list[Outcome]:
    """The outcome of each job. A batch of templates that only print data (direct.py) is rendered
    in this thread, with the same results, without the round trip to a render process; its outcomes
    report the thread's CPU time and no memory (0: there is no process of its own to measure)."""
    direct = _direct.render(limits, context, jobs)
    if direct is not None:
        return [Outcome(text, problem, cpu, 0, 0) for text, problem, cpu in direct]
    return pool_for(limits.memory_mb).run(limits, context, jobs)


@atexit.register
def _close_all() -> None:
    with _pools_lock:
        pools = list(_pools.values())
    for pool in pools:
        pool.close()


def _forget_after_fork() -> None:
    """A forked hub must not share its parent's render processes (their pipes would interleave)."""
    global _pools_lock
    for pool in _pools.values():
        for child in pool._idle:
            for stream in (child.proc.stdin, child.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
    _pools.clear()
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)

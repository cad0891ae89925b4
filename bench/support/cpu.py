"""CPU time of the benches' processes, read from Linux /proc (no psutil in the environment).

A process's own /proc/<pid>/stat counts its children only once it has waited for them (cutime,
cstime), so the CPU of a gunicorn master's live workers, or of a worker's live render process,
is only found by walking the process tree: `tree_cpu_seconds` adds every live descendant's own
figures to the root's."""
from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    # fields after the "(comm)" that may itself hold spaces or parentheses: [0] state, [1] ppid,
    # [11] utime, [12] stime, [13] cutime, [14] cstime (clock ticks)
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (not its children)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK


def tree_cpu_seconds(*pids: int) -> float:
    """User + system CPU time so far of processes and all their descendants (one walk of /proc
    for all of them): each live one's own, plus what each has collected from the children it
    waited for. The roots must not descend from one another."""
    stats: dict[int, list[str]] = {}
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue        # exited while we walked
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    missing = [p for p in pids if p not in stats]
    if missing:
        raise ProcessLookupError(missing)
    total, todo = 0, list(pids)
    while todo:
        current = todo.pop()
        fields = stats[current]
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        todo.extend(children.get(current, ()))
    return total / TICK


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU ticks of the whole machine so far (Linux /proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    return sum(ticks) - idle, sum(ticks)

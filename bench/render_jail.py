"""Cost of rendering a typical task-name template in the render process (pool.py) against rendering
it in-process, per render: `python -m bench.render_jail [renders]`."""
from __future__ import annotations

import json
import os
import sys
import time

from hub.mappings import Carry, Limits, TargetRenderer, sample_record
from hub.mappings import pool
from hub.mappings.context import template_context
from hub.mappings.pool import Job
from hub.mappings.render import Renderer

NAME = "{{ deal.title }} ({{ deal.value }}) for {{ org.name | default('no organization', true) }}"


def _children_cpu() -> float:
    total = 0.0
    for pid in pool.pool_for(Limits().memory_mb).pids():
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measure(label: str, fn, n: int) -> dict:
    fn()                                          # warm-up: process start, compile
    wall, cpu, child = time.perf_counter(), time.process_time(), _children_cpu()
    for _ in range(n):
        fn()
    wall, cpu, child = time.perf_counter() - wall, time.process_time() - cpu, _children_cpu() - child
    print(f"{label:<44} {wall / n * 1e6:7.1f} us wall {cpu / n * 1e6:7.1f} us CPU here {child / n * 1e6:7.1f} us CPU "
          "in render processes")
    return {"wall_us": round(wall / n * 1e6, 1), "cpu_us": round(cpu / n * 1e6, 1),
            "render_process_cpu_us": round(child / n * 1e6, 1)}


def main(n: int) -> None:
    limits = Limits()
    ctx = template_context(sample_record(), Carry(), [], event={"kind": "deal.won"}, rule_name="bench")
    renderer = Renderer(limits, html=False)
    figures = {"renders": n,
               "in_process": measure("name template, in-process", lambda: renderer.render(NAME, ctx), n),
               "render_process": measure("name template, render process",
                                         lambda: pool.render(limits, ctx, [Job(False, NAME)]), n)}
    target = TargetRenderer(limits)
    record = sample_record()
    figures["full_render"] = measure("TargetRenderer.render (name + description)",
                                     lambda: target.render(NAME, "Won by {{ deal.owner }}", record, Carry(), [],
                                                           event={"kind": "deal.won"}, rule_name="bench"), n)
    print(json.dumps(figures))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)

"""The machine-readable end of every bench: its last line of stdout is one JSON object,
{"bench": ..., "results": [...], "goals": {...}, ...}, so a script can read the figures without
parsing the table above it.

A goal is one of the speed issue's targets as the bench measured it: its value, the target, the
case it was measured in and pass (true / false), or pass null when this run did not measure
that case (e.g. `--engines sqlite` leaves the PostgreSQL goals unmeasured)."""
from __future__ import annotations

import json
import math
import operator

_OPS = {">=": operator.ge, "<=": operator.le}


def goal(value: float | None, op: str, target: float, case: str, unit: str = "") -> dict:
    measured = value is not None and not (isinstance(value, float) and math.isnan(value))
    return {"value": _round(value) if measured else None, "target": f"{op} {target:g}{unit}", "case": case,
            "pass": bool(_OPS[op](value, target)) if measured else None}


def print_goals(goals: dict) -> None:
    """The goals as lines of the human-readable report."""
    for name, g in goals.items():
        verdict = {True: "PASS", False: "FAIL", None: "not measured"}[g["pass"]]
        value = "-" if g["value"] is None else f"{g['value']:g}"
        print(f"goal {name:<24} {value:>9} (target {g['target']}; {g['case']}): {verdict}")


def emit(bench: str, results: list[dict], goals: dict, **extra) -> None:
    """Print the bench's figures as its last line of stdout."""
    print(json.dumps({"bench": bench, **_round(extra), "results": _round(results), "goals": goals}), flush=True)


def _round(value):
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    return value

"""Job handlers used by the queue tests (loaded into worker processes via jobs.handler_modules)."""
from __future__ import annotations

import os

from sqlalchemy import text

from hub.jobs import handler

EFFECTS_DDL = "CREATE TABLE IF NOT EXISTS job_effects (job_id BIGINT PRIMARY KEY, n INTEGER NOT NULL, pid INTEGER NOT NULL)"
RUNS_DDL = "CREATE TABLE IF NOT EXISTS job_runs (id BIGSERIAL PRIMARY KEY, job_id BIGINT NOT NULL, pid INTEGER NOT NULL)"


@handler("test.effect")
def record_effect(ctx) -> None:
    """The effect row is keyed by job and written in the job's own transaction: exactly once."""
    with ctx.db.begin() as s:  # a run counter outside the job's transaction: shows re-runs happen
        s.execute(text("INSERT INTO job_runs (job_id, pid) VALUES (:j, :p)"), {"j": ctx.job_id, "p": os.getpid()})
    ctx.session.execute(
        text("INSERT INTO job_effects (job_id, n, pid) VALUES (:j, :n, :p) ON CONFLICT (job_id) DO NOTHING"),
        {"j": ctx.job_id, "n": ctx.payload["n"], "p": os.getpid()},
    )

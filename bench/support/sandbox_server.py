"""The provider sandbox as a server process of its own, for the multi-process benches.

    python bench/support/sandbox_server.py --port 9100 --hub-url http://127.0.0.1:8000

Serves `hub.sandbox.<provider>.create_app()` for Pipedrive, Asana and Google under
`/sandbox/<provider>` on one port (werkzeug DispatcherMiddleware, waitress with many threads so
the `latency_ms` knob delays requests without queueing them). The hub processes reach it through
HUB_<PROVIDER>_ORIGIN with the sandbox's OAuth client (`relay-hub-sandbox` / `sandbox-secret`).

Besides each emulator's own control routes (`/sandbox/<p>/_sandbox/faults`, `/tokens/expire`,
`/oauth/counters`) a bench-only `/_bench` API plays the CRM user in bulk and reads the outcome:

- `GET  /_bench/summary`   pipelines, stages, Asana workspaces/projects/users
- `POST /_bench/deals`     `{"plan": ["won", "lost", "move", "none", ...], "prefix": "..."}`: one deal
                           per entry is created, then changed as named (its webhooks fire as in the CRM)
- `POST /_bench/flush`     wait until the webhook queue is empty (`{"timeout": s}`); `GET /_bench/pending`
- `GET  /_bench/result`    the deals the bench made, every Asana task, delivery and OAuth counters
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from flask import Flask, jsonify, request  # noqa: E402
from werkzeug.middleware.dispatcher import DispatcherMiddleware  # noqa: E402

from hub.config import load_settings  # noqa: E402
from hub.sandbox import build_emulators  # noqa: E402


class DeliveryCounters:
    """Counts every webhook delivery attempt the Pipedrive emulator makes (its own log keeps only
    the last 2,000): first attempts, retries, chaos duplicates, reordered ones, failures."""

    def __init__(self, dispatcher):
        self.lock = threading.Lock()
        self.values = {"deliveries": 0, "ok": 0, "failed": 0, "duplicates": 0, "reordered": 0, "retries": 0,
                       "dropped": 0}
        self.published: set[str] = set()   # event ids sent at least once
        self.delivered: set[str] = set()   # event ids the hub acknowledged (2xx) at least once
        deliver, log = dispatcher._deliver, dispatcher._log

        def counted_deliver(session, job):
            if job.get("held"):
                with self.lock:
                    self.values["reordered"] += 1   # held back and sent after the delivery that overtook it
            deliver(session, job)

        def counted_log(target, entry):
            if target is dispatcher.deliveries and entry.get("kind") == "webhook":
                with self.lock:
                    if entry.get("event_id"):
                        self.published.add(entry["event_id"])
                        if entry.get("ok"):
                            self.delivered.add(entry["event_id"])
                    self.values["deliveries"] += 1
                    self.values["duplicates"] += bool(entry.get("duplicate"))
                    self.values["retries"] += (entry.get("attempt") or 1) > 1
                    if entry.get("ok"):
                        self.values["ok"] += 1
                    elif str(entry.get("error") or "").startswith(("dropped", "lost")):
                        self.values["dropped"] += 1
                    else:
                        self.values["failed"] += 1
            log(target, entry)

        dispatcher._deliver = counted_deliver
        dispatcher._log = counted_log

    def snapshot(self) -> dict:
        with self.lock:
            return dict(self.values, events=len(self.published), events_acknowledged=len(self.delivered),
                        never_acknowledged=sorted(self.published - self.delivered)[:50])


def build(hub_url: str, access_ttl: int | None, time_scale: float = 0.1) -> tuple[object, dict]:
    settings = load_settings({"sandbox.persist": False, "sandbox.webhook_time_scale": time_scale}, environ={})
    emulators = build_emulators(None, hub_url, settings)
    if access_ttl:
        for provider in ("pipedrive", "asana", "google"):
            emulators[provider].extensions["sandbox"].tokens.access_ttl = access_ttl
    pd = emulators["pipedrive"].extensions["sandbox"]
    asana = emulators["asana"].extensions["sandbox"]
    counters = DeliveryCounters(pd.dispatcher)
    made: dict[int, dict] = {}
    made_lock = threading.Lock()

    control = Flask("bench_sandbox")

    @control.get("/_bench/summary")
    def summary():
        return jsonify({
            "pipelines": sorted(pd.data["pd_pipelines"].values(), key=lambda p: p["id"]),
            "stages": sorted(pd.data["pd_stages"].values(), key=lambda s: (s["pipeline_id"], s["order_nr"])),
            "workspaces": asana.workspaces(), "projects": asana.projects(),
            "users": [{"gid": u["gid"], "name": u["name"], "email": u["email"]} for u in asana.users()],
            "pd_users": [{"id": u["id"], "name": u["name"], "email": u["email"]} for u in pd.users()],
        })

    @control.post("/_bench/deals")
    def deals():
        body = request.get_json(force=True)
        plan = body["plan"]
        prefix = body.get("prefix", "Bench deal")
        stages = sorted((s for s in pd.data["pd_stages"].values() if s["pipeline_id"] == 1),
                        key=lambda s: s["order_nr"])
        out = []
        for n, action in enumerate(plan):
            deal = pd.create_deal(f"{prefix} {n}", pipeline_id=1, value=1000 + n)
            if action == "won":
                pd.mark_won(deal["id"])
            elif action == "lost":
                pd.mark_lost(deal["id"], "Price")
            elif action == "move":
                pd.move_stage(deal["id"], stages[1]["id"])
            elif action != "none":
                return jsonify({"error": f"plan[{n}]: unknown action {action!r}"}), 400
            with made_lock:
                made[deal["id"]] = {"id": deal["id"], "action": action}
            out.append(deal["id"])
        return jsonify({"deal_ids": out})

    @control.post("/_bench/flush")
    def flush():
        timeout = float((request.get_json(silent=True) or {}).get("timeout", 60))
        return jsonify({"flushed": pd.flush(timeout), "pending": pd.dispatcher.pending()})

    @control.get("/_bench/pending")
    def pending():
        return jsonify({"pending": pd.dispatcher.pending()})

    @control.get("/_bench/result")
    def result():
        with made_lock:
            mine = list(made.values())
        deals_now = {d["id"]: {"status": d["status"], "stage_id": d["stage_id"]} for d in
                     (pd.data["pd_deals"].get(str(m["id"])) for m in mine) if d}
        tasks = [{"gid": t["gid"], "name": t["name"], "projects": t.get("projects"), "created_at": t.get("created_at"),
                  "external_gid": ((t.get("external") or {}).get("relay-hub-sandbox") or {}).get("gid")}
                 for t in asana.tasks()]
        return jsonify({
            "deals": [dict(m, **deals_now.get(m["id"], {})) for m in mine], "tasks": tasks,
            "deliveries": counters.snapshot(), "pending_deliveries": pd.dispatcher.pending(),
            "oauth": {p: emulators[p].extensions["sandbox"].tokens.counters() for p in ("pipedrive", "asana", "google")},
        })

    @control.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    app = DispatcherMiddleware(control, {f"/sandbox/{p}": a for p, a in emulators.items()})
    return app, emulators


def main() -> None:
    parser = argparse.ArgumentParser(description="the provider sandbox as its own server process")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--hub-url", required=True, help="the hub's base URL (OAuth callbacks)")
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--access-ttl", type=int, default=0, help="access token lifetime in seconds (0: as documented)")
    parser.add_argument("--webhook-time-scale", type=float, default=0.1,
                        help="multiplies Pipedrive's webhook retry delays (3, 30, 150 s) and its ban")
    args = parser.parse_args()
    app, _ = build(args.hub_url, args.access_ttl or None, args.webhook_time_scale)
    from waitress import serve

    print(f"sandbox on http://{args.host}:{args.port}/sandbox/ (pid {os.getpid()})", flush=True)
    serve(app, host=args.host, port=args.port, threads=args.threads, connection_limit=1000, backlog=2048,
          ident="sandbox")


if __name__ == "__main__":
    main()

"""The Pipedrive and Google emulators for bench/sync.py, in a process of their own (so the bench's
peak RSS is the engine's, not the emulators' 25,000 persons and contacts).

    python bench/support/sync_sandbox.py --persons 25000 --orgs 250

Seeds the Pipedrive emulator through its Python methods (persons with e-mail, phone and one of
`--orgs` organizations, their update times spread over the past hours as a CRM's are), adds an empty
Google account, mints tokens for both, serves on a free local port and prints one JSON line:
{"url", "pipedrive": {api, access_token, refresh_token, user_id}, "google": {api, ..., account}}.

Every API request is counted per provider at the emulator (`GET /_bench/calls`, `POST /_bench/calls`
resets). `POST /_bench/change {"n": 10}` changes n persons in the CRM (a new phone number each)."""
from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from flask import Flask, jsonify, request  # noqa: E402
from werkzeug.middleware.dispatcher import DispatcherMiddleware  # noqa: E402

from hub.config import load_settings  # noqa: E402
from hub.sandbox import SANDBOX_CLIENT_ID, build_emulators  # noqa: E402

BENCH_ACCOUNT = "bench@sandbox.example"


class CallCounter:
    """WSGI middleware: API requests per provider (control and OAuth routes are not API calls)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.calls: Counter = Counter()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        parts = path.split("/")
        if len(parts) > 3 and parts[1] == "sandbox" and parts[3] in ("api", "v1"):
            with self.lock:
                self.calls[parts[2]] += 1
                self.calls[f"{parts[2]} {environ.get('REQUEST_METHOD')} {_kind(parts)}"] += 1
        return self.app(environ, start_response)


def _kind(parts: list[str]) -> str:
    """`/sandbox/google/v1/people:batchCreateContacts` -> `people:batchCreateContacts`; ids dropped."""
    tail = [p for p in parts[3:] if p and not p.isdigit() and not p.startswith("c3")]
    return "/".join(tail[-2:])


def seed_pipedrive(pd, persons: int, orgs: int) -> None:
    """Persons created over the past hours (ten per second), so `updated_since` cursors behave as in
    a real CRM: only the last second's persons are read again by the next incremental run."""
    start = time.time() - persons / 10 - 3600
    tick = {"n": 0}
    pd.clock = lambda: start + tick["n"] / 10
    org_ids = [pd.create_org(f"Bench Org {n:04d}")["id"] for n in range(orgs)]
    have = sum(1 for p in pd.data["pd_persons"].values() if not p.get("is_deleted"))
    for n in range(max(0, persons - have)):
        tick["n"] = n
        pd.create_person(first_name=f"Person{n:05d}", last_name="Bench",
                         emails=[{"value": f"person{n:05d}@bench.example", "label": "work", "primary": True}],
                         phones=[{"value": f"+49 30 {n:07d}", "label": "work", "primary": True}],
                         org_id=org_ids[n % len(org_ids)] if org_ids else None)
    pd.clock = time.time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=25000)
    parser.add_argument("--orgs", type=int, default=250)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = load_settings({"hub.sandbox": True, "sandbox.persist": False})
    emulators = build_emulators(None, url, settings)
    pd = emulators["pipedrive"].extensions["sandbox"]
    google = emulators["google"].extensions["sandbox"]
    seed_pipedrive(pd, args.persons, args.orgs)
    account = google.add_account(BENCH_ACCOUNT, "Bench")["id"]
    crm_grant = {"client_id": SANDBOX_CLIENT_ID, "company_id": pd.company()["id"], "user_id": pd.admin_id(),
                 "scopes": ["base", "deals:full", "contacts:full", "admin", "users:read", "leads:read"]}
    crm = pd.tokens.issue(SANDBOX_CLIENT_ID, crm_grant)
    google_grant = {"account": account, "client_id": SANDBOX_CLIENT_ID, "issue_refresh": True,
                    "scopes": ["openid", "email", "https://www.googleapis.com/auth/contacts"]}
    gtok = google.tokens.issue(SANDBOX_CLIENT_ID, google_grant)

    control = Flask("sync_bench_control")
    counter = CallCounter(DispatcherMiddleware(control, {f"/sandbox/{p}": a for p, a in emulators.items()}))

    @control.get("/_bench/calls")
    def calls():
        with counter.lock:
            return jsonify(dict(counter.calls))

    @control.post("/_bench/calls")
    def reset():
        with counter.lock:
            counter.calls.clear()
        return jsonify({})

    @control.post("/_bench/change")
    def change():
        n = int((request.get_json(silent=True) or {}).get("n", 10))
        live = sorted(int(k) for k, p in pd.data["pd_persons"].items() if not p.get("is_deleted"))
        step = max(1, len(live) // n)
        changed = [live[i * step] for i in range(n)]
        for person_id in changed:
            pd.update_person(person_id, {"phones": [{"value": f"+49 40 {person_id:07d}", "label": "mobile",
                                                     "primary": True}]})
        return jsonify({"changed": changed})

    @control.get("/_bench/google")
    def google_state():
        return jsonify({"contacts": google.contact_count(account)})

    print(json.dumps({
        "url": url, "persons": sum(1 for p in pd.data["pd_persons"].values() if not p.get("is_deleted")),
        "orgs": len({p.get("org_id") for p in pd.data["pd_persons"].values() if p.get("org_id")}),
        "pipedrive": {"api": f"{url}/sandbox/pipedrive", "access_token": crm["access_token"],
                      "refresh_token": crm["refresh_token"], "user_id": pd.admin_id(),
                      "company_id": pd.company()["id"]},
        "google": {"api": f"{url}/sandbox/google", "access_token": gtok["access_token"],
                   "refresh_token": gtok["refresh_token"], "account": account, "email": BENCH_ACCOUNT}}), flush=True)
    from waitress import serve
    serve(counter, host="127.0.0.1", port=port, threads=8, _quiet=True)


if __name__ == "__main__":
    main()

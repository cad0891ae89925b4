"""Contact sync: an initial sync of 25,000 Pipedrive persons to an empty Google account, then an
incremental run with 10 changed persons.

    .venv/bin/python bench/sync.py [--persons 25000] [--orgs 250] [--changes 10] [--engine sqlite|postgres]

The emulators run in a process of their own (bench/support/sync_sandbox.py: seeded through their
Python methods, served on a local port, every API request counted there). Each run is the real
engine (`SyncEngine.run()`) in a fresh child process of this script, so its peak RSS is the run's
own; wall and CPU time are the child's around `run()`.

"minimum" is the fewest calls any correct run needs with these APIs:
  initial:     persons/500 (Pipedrive pages) + orgs/100 (organization names: v2 persons carry only
               the org id; 100 ids a call) + 1 (Google listing of the empty account)
               + persons/200 (batch creates) + persons/1000 (reading the run's own writes back, so
               the next run's sync token is past them)
  incremental: 1 (Pipedrive page) + 1 (their organizations' names) + 1 (Google changes)
               + changes/200 (the contacts' current etags, batchGet) + changes/200 (batch update)
Goals: calls <= 1.05 x minimum, peak RSS <= 200 MB, incremental <= 6 calls."""
from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds queue.py: keep this folder off the import path, or it would shadow the stdlib queue
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import math
import os
import resource
import subprocess
import tempfile
import time
import uuid

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

PG_ADMIN = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
GOALS = {"ratio": 1.05, "rss_mb": 200.0, "incremental_calls": 6}


# -- the child: one run of the engine ---------------------------------------------------------------
def child(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    from hub import create_app
    from hub.sync.engine import SyncEngine

    app = create_app(config["app"])
    services = app.extensions["hub"]
    wall, cpu = time.perf_counter(), time.process_time()
    result = SyncEngine(services, config["sync_id"], trigger="bench").run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mb": peak_mb, "result": result}))
    services.db.dispose()


# -- the parent: set up, run twice, print the table ---------------------------------------------------
def make_database(engine: str, tmp: Path) -> tuple[str, callable]:
    if engine == "sqlite":
        return f"sqlite:///{tmp / 'bench-sync.db'}", lambda: None
    from sqlalchemy import create_engine, text
    name = f"hub_bench_sync_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def start_sandbox(persons: int, orgs: int) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "support" / "sync_sandbox.py"),
                             "--persons", str(persons), "--orgs", str(orgs)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("the sandbox process did not start")
    info = json.loads(line)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # waitress is listening once this answers
        try:
            requests.get(info["url"] + "/_bench/calls", timeout=2).raise_for_status()
            return proc, info
        except requests.RequestException:
            time.sleep(0.05)
    raise SystemExit("the sandbox process does not answer")


def set_up_hub(app_config: dict, sandbox: dict) -> int:
    """The installation, both connections (tokens minted by the emulators) and a sync with a new label."""
    from hub import create_app
    from hub.oauth.tokens import store_tokens
    from hub.store import Connection, Installation, InstallationUser, migrate
    from hub.sync import service

    app = create_app(app_config)
    services = app.extensions["hub"]
    migrate.upgrade(services.db.engine)
    pd, google = sandbox["pipedrive"], sandbox["google"]
    with services.db.begin() as s:
        inst = Installation(provider="pipedrive", company_id=str(pd["company_id"]), installer_user_id=str(pd["user_id"]),
                            company_name="Bench", endpoint_token=uuid.uuid4().hex, api_domain=pd["api"])
        s.add(inst)
        s.flush()
        s.add(InstallationUser(installation_id=inst.id, crm_user_id=str(pd["user_id"]), allowed=True))
        for role, account, api, tokens in (("crm", str(pd["user_id"]), pd["api"], pd),
                                           ("target", google["account"], google["api"], google)):
            conn = Connection(installation_id=inst.id, provider="pipedrive" if role == "crm" else "google", role=role,
                              account_id=account, account_email=google["email"] if role == "target" else "",
                              api_base=api, token_url=f"{api}/oauth/token" if role == "crm" else f"{api}/token")
            s.add(conn)
            s.flush()
            store_tokens(services, s, conn, {"access_token": tokens["access_token"],
                                             "refresh_token": tokens["refresh_token"], "expires_in": 3599})
        iid = inst.id
    with services.db.begin() as s:
        [conn] = service.google_connections(s, iid)
        conn_id = conn.id
    sync = service.create(services, iid, "bench", {"name": "Bench", "google_connection_id": conn_id, "group": "__new__",
                                                   "new_group_name": "Bench CRM", "schedule_seconds": 0})
    services.db.dispose()
    return sync.id


def run_child(config: dict, tmp: Path) -> dict:
    path = tmp / f"run-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(config))
    out = subprocess.run([sys.executable, __file__, "--child", str(path)], cwd=REPO, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    if out.returncode != 0:
        raise SystemExit(f"the run failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def calls(url: str, reset: bool = False) -> dict:
    if reset:
        requests.post(url + "/_bench/calls", timeout=10)
        return {}
    return requests.get(url + "/_bench/calls", timeout=10).json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=25000)
    parser.add_argument("--orgs", type=int, default=250)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--engine", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--verbose", action="store_true", help="print the calls per endpoint")
    args = parser.parse_args()
    if args.child:
        return child(args.child)

    from cryptography.fernet import Fernet
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url, drop = make_database(args.engine, tmp)
        t0 = time.perf_counter()
        sandbox_proc, sandbox = start_sandbox(args.persons, args.orgs)
        n, orgs = sandbox["persons"], sandbox["orgs"]  # the emulator's own few demo persons included
        print(f"sandbox: {n} persons of {orgs} organizations seeded in {time.perf_counter() - t0:.1f} s "
              f"(database: {args.engine})", flush=True)
        minimum = {"initial": math.ceil(n / 500) + math.ceil(orgs / 100) + 1 + math.ceil(n / 200) + math.ceil(n / 1000),
                   "incremental": 1 + (1 if orgs else 0) + 1 + 2 * math.ceil(args.changes / 200)}
        try:
            app_config = {"database_url": url, "instance_path": str(tmp / "instance"),
                          "secret_keys": Fernet.generate_key().decode(), "session_secret": "bench",
                          "embedded": False, "sandbox": False, "log_level": "WARNING", "base_url": sandbox["url"]}
            sync_id = set_up_hub(app_config, sandbox)
            config = {"app": app_config, "sync_id": sync_id}
            rows = []
            for phase in ("initial", "incremental"):
                if phase == "incremental":
                    requests.post(sandbox["url"] + "/_bench/change", json={"n": args.changes}, timeout=60)
                calls(sandbox["url"], reset=True)
                out = run_child(config, tmp)
                counted = calls(sandbox["url"])
                total = counted.get("pipedrive", 0) + counted.get("google", 0)
                rows.append((phase, out, counted, total))
            contacts = requests.get(sandbox["url"] + "/_bench/google", timeout=10).json()["contacts"]
        finally:
            sandbox_proc.terminate()
            sandbox_proc.wait(30)
            drop()

    print(f"{'run':<12} {'API calls':>9} {'minimum':>8} {'ratio':>6} {'pipedrive':>9} {'google':>7} "
          f"{'wall s':>7} {'CPU s':>6} {'peak RSS MB':>11}  result")
    for phase, out, counted, total in rows:
        r = out["result"]
        print(f"{phase:<12} {total:>9} {minimum[phase]:>8} {total / minimum[phase]:>6.3f} {counted.get('pipedrive', 0):>9} "
              f"{counted.get('google', 0):>7} {out['wall']:>7.1f} {out['cpu']:>6.1f} {out['peak_mb']:>11.0f}  "
              f"{r['status']}: {r['message']}")
        if args.verbose:
            for key, value in sorted(counted.items()):
                if " " in key:
                    print(f"{'':<14}{value:>6}  {key}")
    initial, incremental = rows[0], rows[1]
    checks = [
        ("initial calls <= 1.05 x minimum", initial[3] <= GOALS["ratio"] * minimum["initial"]),
        ("incremental calls <= 6", incremental[3] <= GOALS["incremental_calls"]),
        ("peak RSS <= 200 MB", max(initial[1]["peak_mb"], incremental[1]["peak_mb"]) <= GOALS["rss_mb"]),
        (f"Google holds {n} contacts", contacts == n),
    ]
    for text, ok in checks:
        print(f"{'ok  ' if ok else 'MISS'} {text}")
    sys.exit(0 if all(ok for _, ok in checks) else 1)


if __name__ == "__main__":
    main()

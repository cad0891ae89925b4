"""CPU per accepted webhook in one process (Flask test client, one thread): the hub's own cost per
request, readable on a busy machine where req/s is not (bench/ingest.py measures req/s and latency).

    PYTHONPATH=$PWD .venv/bin/python bench/ingest_cpu.py sqlite|postgres [requests] [--profile out.prof]

Same payload and installation as bench/ingest.py (each request a new event id); prints CPU ms and
wall ms per request, and checks one inbox row and one job per request. PostgreSQL: its server's CPU
is not counted (a database of its own, dropped at the end)."""
import sys
from pathlib import Path

# bench/queue.py would shadow the stdlib queue module: keep this folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import base64  # noqa: E402
import cProfile
import json
import os
import tempfile
import time
import uuid

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

engine_name = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
prof = sys.argv[sys.argv.index("--profile") + 1] if "--profile" in sys.argv else None
tmp = Path(tempfile.mkdtemp())
if engine_name == "sqlite":
    url = f"sqlite:///{tmp / 'ingest.db'}"
else:
    name = f"hub_cpu_{uuid.uuid4().hex[:8]}"
    admin = create_engine(os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c: c.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
os.environ.update({"HUB_DATABASE_URL": url, "HUB_SECRET_KEYS": Fernet.generate_key().decode(), "HUB_SESSION_SECRET": "b",
                   "HUB_INSTANCE_PATH": str(tmp / "instance"), "HUB_EMBEDDED": "false", "HUB_SANDBOX": "false",
                   "HUB_LOG_LEVEL": "WARNING"})
from hub import create_app
from hub.store import Installation, migrate
from hub.webhooks.credentials import webhook_credentials
app = create_app(); services = app.extensions["hub"]
migrate.upgrade(services.db.engine)
with services.db.begin() as s:
    inst = Installation(provider="pipedrive", company_id="1", installer_user_id="1", endpoint_token="bench-token")
    s.add(inst); s.flush()
    user, pw = webhook_credentials(services, s, inst.id, create=True)
auth = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
def payload():
    return json.dumps({"meta": {"action": "change", "entity": "deal", "entity_id": "42", "id": str(uuid.uuid4()),
                                "timestamp": "2026-11-20T14:03:11.562Z", "version": "2.0", "attempt": 1},
                       "data": {"id": 42, "title": "Bench deal", "status": "won", "stage_id": 3, "pipeline_id": 1,
                                "update_time": "2026-11-20T14:03:11Z", "won_time": "2026-11-20T14:03:11Z"},
                       "previous": {"status": "open", "update_time": "2026-11-20T14:01:47Z"}}).encode()
client = app.test_client()
bodies = [payload() for _ in range(n + 200)]
def run(k, off):
    for i in range(k):
        r = client.post("/hooks/pipedrive/bench-token", data=bodies[off + i], headers={"Authorization": auth, "Content-Type": "application/json"})
        assert r.status_code == 200, r.data
run(200, 0)
p = cProfile.Profile() if prof else None
c0 = time.process_time(); w0 = time.perf_counter()
if p: p.enable()
run(n, 200)
if p: p.disable()
c1 = time.process_time(); w1 = time.perf_counter()
if p: p.dump_stats(prof)
with services.db.engine.connect() as c:
    stored = c.execute(text("select count(*) from inbox_events")).scalar_one()
    jobs = c.execute(text("select count(*) from jobs")).scalar_one()
cpu_ms, wall_ms = (c1 - c0) / n * 1000, (w1 - w0) / n * 1000
print(f"{engine_name}: {cpu_ms:.3f} ms CPU/request, {wall_ms:.3f} ms wall/request; stored {stored} jobs {jobs} (want {n+200})")
services.db.dispose()
if engine_name != "sqlite":
    with admin.connect() as c: c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
if stored != n + 200 or jobs != n + 200:
    sys.exit(f"expected {n + 200} inbox rows and jobs, found {stored} and {jobs}")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.support.report import emit  # noqa: E402
emit("ingest_cpu", [{"engine": engine_name, "requests": n, "cpu_ms_per_request": cpu_ms,
                     "wall_ms_per_request": wall_ms}], {})

"""bench/support/cluster.py's `Cluster` on either engine, for bench/pipeline.py.

The cluster harness makes a fresh PostgreSQL database per run; the pipeline bench also measures
the embedded default, SQLite (WAL, one writer), with the same processes: the sandbox server,
gunicorn web processes, `flask --app hub worker` processes. Everything else (starting, install
through the hub's pages, the JSON API as the admin, fault knobs) is the cluster's own."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import create_engine

from .cluster import Cluster


@dataclass
class PipelineCluster(Cluster):
    engine: str = "postgres"          # postgres | sqlite

    def _create_database(self) -> None:
        if self.engine == "postgres":
            return super()._create_database()
        from hub.store import Database, migrate

        self.db_url = f"sqlite:///{self.workdir / 'hub.db'}"
        db = Database(self.db_url)        # the hub's own engine setup (WAL, busy timeout)
        migrate.upgrade(db.engine)
        db.dispose()
        self._engine = create_engine(self.db_url)

    def webhook_auth(self, installation_id: int) -> tuple[str, tuple[str, str]]:
        """(endpoint token, Basic credentials) the hub gave the CRM for this installation, read
        as the hub reads them (decrypted with the cluster's key)."""
        from hub.secrets import KeyRing, SecretStore
        from hub.store import Database
        from hub.webhooks.credentials import webhook_credentials

        db = Database(self.db_url)
        try:
            services = SimpleNamespace(secrets=SecretStore(KeyRing([self.key])))
            with db.begin() as session:
                auth = webhook_credentials(services, session, installation_id)
        finally:
            db.dispose()
        token = self.scalar("SELECT endpoint_token FROM installations WHERE id = :i", i=installation_id)
        return token, auth

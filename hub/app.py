"""The application factory and the services one hub process holds."""
from __future__ import annotations

import gc

import logging
import secrets as pysecrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from flask import Flask

from .config import ConfigError, Settings, load_settings
from .connectors import retry
from .jobs import JobQueue, Worker
from .jobs.registry import load_modules
from .logs import configure_logging
from .secrets import SecretStore, load_key_ring
from .store import Clock, Database
from .store.migrate import is_current

log = logging.getLogger("hub")


@dataclass
class HubServices:
    settings: Settings
    db: Database
    queue: JobQueue
    secrets: SecretStore
    instance_path: Path
    base_url: str = ""
    retry_policy: Any = None      # this hub's hub.connectors.retry.RetryPolicy (its clients use it)
    worker: Worker | None = None
    scheduler: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    def check_ready_to_run(self) -> None:
        """Before a process starts working: schema current and the keys fit what is stored."""
        if not is_current(self.db.engine):
            raise ConfigError("the database schema is not current: run `flask --app hub db upgrade`")
        self.secrets.verify(self.db)

    def start_worker(self, app: Flask, concurrency: int | None = None) -> Worker:
        s = self.settings
        self.worker = Worker(self.queue, concurrency=concurrency or s["jobs.concurrency"],
                             poll_interval=s["jobs.poll_interval"], app=app, batch_size=s["jobs.batch_size"]).start()
        return self.worker

    def start_scheduler(self, app: Flask):
        from .scheduler import HubScheduler

        self.scheduler = HubScheduler.for_database(
            self.queue, self.instance_path, retry_seconds=self.settings["scheduler.leader_retry_seconds"], app=app
        ).start()
        return self.scheduler

    def stop(self) -> None:
        if "sandbox" in self.extras:
            from .sandbox import close
            close(self.extras.pop("sandbox"))
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.worker is not None:
            self.worker.stop()
            self.worker = None


def _instance_path(settings: Settings) -> Path:
    raw = settings["hub.instance_path"]
    return Path(raw).resolve() if raw else (Path.cwd() / "instance").resolve()


def _session_secret(settings: Settings, instance: Path, embedded_db: bool) -> str:
    if settings["hub.session_secret"]:
        return settings["hub.session_secret"]
    path = instance / "session.key"
    if path.exists():
        return path.read_text().strip()
    if not embedded_db:
        raise ConfigError("HUB_SESSION_SECRET: required with PostgreSQL (a long random string shared by all web processes)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pysecrets.token_urlsafe(48))
    path.chmod(0o600)
    return path.read_text().strip()


def create_app(config: Mapping[str, Any] | None = None, *, clock: Clock | None = None) -> Flask:
    """Build a hub: settings from config/hub.toml, HUB_* variables and `config` (keys like
    "database_url" or "jobs.max_attempts"). Starts no threads: `serve`, `worker` and `scheduler`
    do that, so tests and gunicorn get a plain WSGI app."""
    settings = load_settings(config)
    configure_logging(settings["hub.log_level"], settings["hub.log_format"])
    retry_policy = retry.RetryPolicy.from_settings(settings)
    retry.configure(retry_policy)   # the default for clients made outside a hub (CLI tools, benches)
    instance = _instance_path(settings)
    instance.mkdir(parents=True, exist_ok=True)
    url = settings["hub.database_url"] or f"sqlite:///{instance / 'hub.db'}"
    embedded_db = url.startswith("sqlite")

    app = Flask("hub", instance_path=str(instance), instance_relative_config=True,
                template_folder="web/templates", static_folder="web/static")
    app.config["SECRET_KEY"] = _session_secret(settings, instance, embedded_db)
    app.config["MAX_CONTENT_LENGTH"] = 32 * 1024 * 1024

    db = Database(url, pool_size=max(5, settings["jobs.concurrency"] + 4))
    queue = JobQueue(db, clock=clock, max_attempts=settings["jobs.max_attempts"],
                     backoff_base=settings["jobs.backoff_base"], backoff_cap=settings["jobs.backoff_cap"],
                     lease_seconds=settings["jobs.lease_seconds"])
    ring = load_key_ring(settings["hub.secret_keys"], instance, allow_generate=embedded_db)
    base_url = (settings["hub.base_url"] or f"http://{settings['hub.host']}:{settings['hub.port']}").rstrip("/")
    services = HubServices(settings=settings, db=db, queue=queue, secrets=SecretStore(ring), instance_path=instance,
                           retry_policy=retry_policy,
                           base_url=base_url)
    app.extensions["hub"] = services

    load_modules(settings["jobs.handler_modules"])

    from .web import register_web
    register_web(app, _features())   # its error handlers too (hub/web/errors.py)

    if settings["hub.sandbox"]:
        from . import sandbox
        services.extras["sandbox"] = sandbox.mount(app, instance, base_url, settings)

    from .cli import register_cli
    register_cli(app)
    if settings["hub.freeze_heap"]:
        _freeze_heap()
    return app


_frozen = False


def _freeze_heap() -> None:
    """What the process loaded to serve (modules, compiled statements, templates) lives as long as
    the process: frozen, the full collections that come every few thousand requests or jobs walk
    only what was made since, instead of pausing the process for tens of milliseconds (seen as the
    webhook ingest's p99). Collected first, so no garbage is frozen; once per process."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def _features() -> list:
    """The features this hub runs. Importing a feature registers its job handlers, event subscribers,
    schedules and install hooks; those with pages give their blueprint. This list is the whole of it:
    nothing else imports a feature into being."""
    from . import housekeeping, mail  # noqa: F401  (housekeeping and e-mail jobs)
    from . import rules, sync, tasks, webhooks  # noqa: F401  (rule engine, contact sync, linked tasks, ingest)
    from .rules import automation, web as rules_web
    from .tasks import web as tasks_web
    from .sync import web as sync_web
    from .tasks import templates_web
    from .web import metrics
    from .webhooks import ingest, web as webhooks_web
    return [ingest.bp, rules_web.bp, automation.bp, sync_web.bp, webhooks_web.bp, metrics.bp, tasks_web.bp,
            templates_web.bp]


"""`flask --app hub ...` commands: db, worker, scheduler, serve, jobs, secrets.

A command that cannot do what it was asked prints one line on stderr (`Error: ...`) and exits
non-zero: a bad argument (click's own usage errors span several lines, so they are folded into one),
an unknown id, a database that is not there or not migrated."""
from __future__ import annotations

import json
import signal
import threading

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from .jobs.queue import scope_filter
from .store import Job
from .store import migrate as migrations


def _services():
    return current_app.extensions["hub"]


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum, _frame):
        stop.set()
    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


class OneLineError(click.ClickException):
    """A usage error told in one line (click prints usage, a hint and the error on three)."""

    exit_code = 2


def _one_line(exc: click.UsageError) -> OneLineError:
    words = exc.ctx.command_path.split()[1:] if exc.ctx is not None else []   # without the program's name
    return OneLineError(exc.format_message() + (f" (see `flask --app hub {' '.join(words)} --help`)" if words else ""))


class _OneLine:
    """Mixed into the hub's commands and groups: their failures are one line on stderr."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx):
        from .config import ConfigError
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except (OperationalError, ProgrammingError) as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0][:200]
            raise click.ClickException(f"the database is not reachable or not migrated ({reason}); "
                                       "run `flask --app hub db upgrade`") from None
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


_CLASSES: dict[type, type] = {}


def _one_line_everywhere(group: click.Group) -> None:
    """Every command under the app's CLI, including the groups blueprints and the sandbox add
    (made elsewhere, as click or Flask classes): each gets the one-line behaviour mixed in."""
    for command in group.commands.values():
        cls = type(command)
        if not issubclass(cls, _OneLine):
            command.__class__ = _CLASSES.setdefault(cls, type(f"OneLine{cls.__name__}", (_OneLine, cls), {}))
        if isinstance(command, click.Group):
            _one_line_everywhere(command)


def register_cli(app: Flask) -> None:
    db_cli = AppGroup("db", help="Database schema (Alembic migrations).")

    @db_cli.command("upgrade")
    @click.option("--revision", default="heads", show_default=True)
    def db_upgrade(revision: str) -> None:
        """Apply migrations up to REVISION."""
        migrations.upgrade(_services().db.engine, revision)
        click.echo(f"database at {', '.join(sorted(migrations.current(_services().db.engine))) or 'base'}")

    @db_cli.command("downgrade")
    @click.argument("revision")
    def db_downgrade(revision: str) -> None:
        """Revert migrations down to REVISION ("base" removes every table)."""
        migrations.downgrade(_services().db.engine, revision)
        click.echo(f"database at {', '.join(sorted(migrations.current(_services().db.engine))) or 'base'}")

    @db_cli.command("current")
    def db_current() -> None:
        engine = _services().db.engine
        cur, heads = migrations.current(engine), migrations.heads()
        click.echo(f"current: {', '.join(sorted(cur)) or 'base'}; latest: {', '.join(sorted(heads))}")
        if cur != heads:
            raise SystemExit(1)

    app.cli.add_command(db_cli)

    @app.cli.command("worker")
    @click.option("--concurrency", type=click.IntRange(1, 256), default=None, help="threads (default jobs.concurrency)")
    def worker_cmd(concurrency: int | None) -> None:
        """Run jobs until SIGTERM/SIGINT (scale-out: start as many as you like, anywhere)."""
        services = _services()
        services.check_ready_to_run()
        stop = threading.Event()
        _stop_on_signals(stop)
        worker = services.start_worker(current_app._get_current_object(), concurrency)
        click.echo(f"worker {worker.worker_id} running ({worker.concurrency} threads)")
        stop.wait()
        worker.stop()

    @app.cli.command("scheduler")
    def scheduler_cmd() -> None:
        """Run schedules; with several, one leads and the others stand by."""
        services = _services()
        services.check_ready_to_run()
        stop = threading.Event()
        _stop_on_signals(stop)
        sched = services.start_scheduler(current_app._get_current_object())
        click.echo(f"scheduler {sched.id} started (standby until it holds the leader lock)")
        stop.wait()
        sched.stop()

    @app.cli.command("serve")
    @click.option("--host", default=None)
    @click.option("--port", type=int, default=None)
    @click.option("--threads", type=int, default=16, show_default=True)
    def serve_cmd(host: str | None, port: int | None, threads: int) -> None:
        """Serve the hub (waitress); in embedded mode also run the worker and scheduler here."""
        from waitress import create_server

        services = _services()
        settings = services.settings
        services.check_ready_to_run()
        flask_app = current_app._get_current_object()
        host = host or settings["hub.host"]
        port = port or settings["hub.port"]
        server = create_server(flask_app, host=host, port=port, threads=threads)
        if settings["hub.embedded"]:
            services.start_worker(flask_app)
            services.start_scheduler(flask_app)
        url = settings["hub.base_url"] or f"http://{host}:{server.effective_port}"

        def shutdown(signum, _frame):
            server.close()
        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        click.echo(f"Relay Hub is running at {url}/  (embedded worker and scheduler: "
                   f"{'on' if settings['hub.embedded'] else 'off'}; Ctrl+C stops it)")
        try:
            server.run()
        except (OSError, ValueError):
            pass  # the listening socket closed by the signal handler
        finally:
            services.stop()
            click.echo("stopped")

    jobs_cli = AppGroup("jobs", help="Inspect the job queue, replay dead jobs.")

    def _scope(installation: int | None, global_only: bool):
        from .jobs import EVERY_INSTALLATION
        if installation is not None and global_only:
            raise click.UsageError("--installation and --global exclude each other")
        return None if global_only else (EVERY_INSTALLATION if installation is None else installation)

    installation_option = click.option("--installation", "installation", type=int, default=None,
                                       help="only this installation's jobs (filtered in SQL)")
    global_option = click.option("--global", "global_only", is_flag=True,
                                 help="only global jobs (no installation: housekeeping, schedule fan-outs)")

    @jobs_cli.command("list")
    @click.option("--status", type=click.Choice(["queued", "running", "done", "dead"]), default=None)
    @click.option("--kind", default=None)
    @installation_option
    @global_option
    @click.option("--before", type=int, default=None, help="page on: only jobs with a smaller id")
    @click.option("--limit", type=int, default=50, show_default=True)
    def jobs_list(status: str | None, kind: str | None, installation: int | None, global_only: bool,
                  before: int | None, limit: int) -> None:
        jobs = _services().queue.list_jobs(installation_id=_scope(installation, global_only), status=status,
                                           kind=kind, before_id=before, limit=limit)
        for job in jobs:
            error = (job.last_error or "").splitlines()[0][:100] if job.last_error else ""
            tenant = "-" if job.installation_id is None else job.installation_id
            click.echo(f"{job.id:>8}  {job.status:<8} {tenant!s:>6} {job.kind:<28} "
                       f"attempts {job.attempts}/{job.max_attempts}  {error}")

    @jobs_cli.command("show")
    @click.argument("job_id", type=int)
    def jobs_show(job_id: int) -> None:
        job = _services().queue.get(job_id)
        if job is None:
            raise click.ClickException(f"no job {job_id}")
        click.echo(json.dumps({c.name: getattr(job, c.name) for c in Job.__table__.columns}, default=str, indent=2))

    @jobs_cli.command("replay")
    @click.argument("job_ids", type=int, nargs=-1)
    @click.option("--all-dead", is_flag=True, help="replay every dead job (optionally of --kind, --installation)")
    @click.option("--kind", default=None)
    @installation_option
    @global_option
    def jobs_replay(job_ids: tuple[int, ...], all_dead: bool, kind: str | None, installation: int | None,
                    global_only: bool) -> None:
        """Give dead jobs a fresh set of attempts (only of --installation when given)."""
        queue = _services().queue
        scope = _scope(installation, global_only)
        ids = list(job_ids)
        if all_dead:
            with queue.db.begin() as session:
                query = select(Job.id).where(Job.status == "dead", *scope_filter(scope))
                if kind:
                    query = query.where(Job.kind == kind)
                ids += list(session.scalars(query))
        if not ids:
            raise click.ClickException("name a job id, or use --all-dead")
        failed = [i for i in ids if not queue.replay(i, installation_id=scope)]
        click.echo(f"replayed {len(ids) - len(failed)} job(s)")
        if failed:
            raise click.ClickException(f"not dead (or unknown, or another installation's), left alone: "
                                       f"{', '.join(map(str, failed))}")

    @jobs_cli.command("stats")
    @installation_option
    @global_option
    def jobs_stats(installation: int | None, global_only: bool) -> None:
        counts = _services().queue.counts(installation_id=_scope(installation, global_only))
        click.echo("  ".join(f"{k}={counts.get(k, 0)}" for k in ("queued", "running", "done", "dead")))

    app.cli.add_command(jobs_cli)

    secrets_cli = AppGroup("secrets", help="Encryption keys for stored secrets.")

    @secrets_cli.command("new-key")
    def secrets_new_key() -> None:
        """Print a new Fernet key (put it first in HUB_SECRET_KEYS, then run `secrets rotate`)."""
        from cryptography.fernet import Fernet
        click.echo(Fernet.generate_key().decode())

    @secrets_cli.command("rotate")
    @click.option("--generate", is_flag=True,
                  help="embedded mode: add a new first key to the instance key file before re-encrypting")
    def secrets_rotate(generate: bool) -> None:
        """Re-encrypt every stored secret with the first key."""
        from cryptography.fernet import Fernet

        from .secrets import KEY_FILE, KeyRing, SecretStore, parse_keys, write_key_file

        services = _services()
        if generate:
            if services.settings["hub.secret_keys"]:
                raise click.ClickException("--generate works on the instance key file; with HUB_SECRET_KEYS, "
                                           "put a new key (secrets new-key) first in the variable instead")
            path = services.instance_path / KEY_FILE
            keys = [Fernet.generate_key().decode()] + parse_keys(path.read_text())
            store = SecretStore(KeyRing(keys))
            store.verify(services.db)
            count = store.rotate_all(services.db)
            write_key_file(path, keys)
        else:
            services.secrets.verify(services.db)
            count = services.secrets.rotate_all(services.db)
        click.echo(f"re-encrypted {count} secret(s) with the first key")

    app.cli.add_command(secrets_cli)

    from .sandbox.cli import sandbox_cli
    app.cli.add_command(sandbox_cli)
    _one_line_everywhere(app.cli)

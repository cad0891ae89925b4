"""The provider sandbox: emulators of Pipedrive, Asana and Google served inside the hub at
`/sandbox/<provider>/`, so `make run` works with no accounts and no network.

Each emulator is its own Flask app (see `hub/sandbox/<provider>/`), mounted with werkzeug's
DispatcherMiddleware; state is kept in `<instance>/sandbox/<provider>.json`. An emulator that lives
elsewhere (a test's example connector, a plug-in) joins with `register(name, create_app)` before the
hub is built, and is mounted the same way."""
from __future__ import annotations

import importlib
from pathlib import Path
import threading
from typing import Any, Callable

from flask import Blueprint, Flask, render_template_string, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from .common import Faults, SandboxState

PROVIDERS = ("pipedrive", "asana", "google")
SANDBOX_CLIENT_ID = "relay-hub-sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # a demo app's secret, known to anyone with the sandbox

_registered: dict[str, tuple[Callable[..., Flask], str]] = {}
_lock = threading.Lock()


def register(name: str, create_app: Callable[..., Flask], title: str | None = None) -> None:
    """Mount `create_app(state=, faults=, options=)` at /sandbox/<name>/ in hubs built from now on.
    Its options: `clients` (the hub's OAuth client, as the built-in emulators get it) and
    `base_url` (the emulator's own public root)."""
    with _lock:
        _registered[name] = (create_app, title or name)


def unregister(name: str) -> None:
    with _lock:
        _registered.pop(name, None)


def providers() -> tuple[str, ...]:
    """Every emulator a hub built now mounts: the built-in ones, then the registered ones."""
    with _lock:
        return PROVIDERS + tuple(sorted(n for n in _registered if n not in PROVIDERS))


def sandbox_origin(base_url: str, provider: str) -> str:
    return f"{base_url.rstrip('/')}/sandbox/{provider}"


def build_emulators(instance_path: Path | None, base_url: str, settings: Any) -> dict[str, Flask]:
    """One app per provider, their OAuth client registered with the hub's callback URLs."""
    apps: dict[str, Flask] = {}
    persist = settings["sandbox.persist"] and instance_path is not None
    with _lock:
        registered = dict(_registered)
    for provider in providers():
        if provider in registered:
            create_app = registered[provider][0]
        else:
            create_app = importlib.import_module(f"{__name__}.{provider}").create_app
        state = SandboxState(Path(instance_path) / "sandbox" / f"{provider}.json" if persist else None)
        client = {"client_id": settings.get(f"{provider}.client_id") or SANDBOX_CLIENT_ID,
                  "client_secret": settings.get(f"{provider}.client_secret") or SANDBOX_CLIENT_SECRET,
                  "redirect_uris": [f"{base_url.rstrip('/')}/oauth/{provider}/callback"], "name": "Relay Hub"}
        options: dict[str, Any] = {"clients": [client]}
        if provider in registered:
            options["base_url"] = sandbox_origin(base_url, provider)
        if provider == "pipedrive":
            client["callback_url"] = client["redirect_uris"][0]
            options["time_scale"] = settings["sandbox.webhook_time_scale"]
        apps[provider] = create_app(state=state, faults=Faults(), options=options)
    return apps


INDEX = """<!doctype html><html><head><meta charset="utf-8"><title>Relay Hub sandbox</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#222}
a{color:#0b5cad}li{margin:.4rem 0}code{background:#f3f3f3;padding:0 .3rem}</style></head><body>
<h1>Relay Hub sandbox</h1>
<p>Local emulators of the providers, so you can try the hub with no accounts and no network.
Nothing here talks to the real services.</p>
<ul>
<li><a href="{{ root }}/pipedrive/_sandbox/ui/">Pipedrive</a>: play the CRM user (deals, stages, won/lost,
leads, persons, notes, files), see webhooks and deliveries, installs and fault knobs.</li>
<li><a href="{{ root }}/asana/_sandbox/ui/">Asana</a>: the tasks, projects and attachments the hub created.</li>
<li><a href="{{ root }}/google/_sandbox/ui/">Google Contacts</a>: labels and contacts per account; edit by hand to try two-way sync.</li>
{% for name, title in extra %}<li><a href="{{ root }}/{{ name }}/">{{ title }}</a>: a registered emulator.</li>
{% endfor %}</ul>
<p>Fault knobs are also scriptable: <code>flask --app hub sandbox faults pipedrive error_rate=0.1</code>.</p>
</body></html>"""


def mount(app: Flask, instance_path: Path | None, base_url: str, settings: Any) -> dict[str, Flask]:
    from hub.web.headers import add_security_headers

    emulators = build_emulators(instance_path, base_url, settings)
    for emulator in emulators.values():  # its consent screens are as much a clickjacking target as the hub's
        emulator.after_request(add_security_headers)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {f"/sandbox/{p}": a for p, a in emulators.items()})
    bp = Blueprint("sandbox_index", __name__)

    @bp.get("/sandbox/")
    def index():
        extra = [(name, _registered.get(name, (None, name))[1]) for name in emulators if name not in PROVIDERS]
        return render_template_string(INDEX, root=request.script_root + "/sandbox", extra=extra)

    app.register_blueprint(bp)
    return emulators


def close(emulators: dict[str, Flask]) -> None:
    for emulator_app in emulators.values():
        sandbox = emulator_app.extensions.get("sandbox")
        state = getattr(sandbox, "state", None)
        if state is not None:
            state.close()

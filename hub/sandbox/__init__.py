"""The provider sandbox: emulators of Pipedrive, Asana and Google served inside the hub at
`/sandbox/<provider>/`, so `make run` works with no accounts and no network.

Each emulator is its own Flask app (see `hub/sandbox/<provider>/`), mounted with werkzeug's
DispatcherMiddleware; state is kept in `<instance>/sandbox/<provider>.json`."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, render_template_string, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from .common import Faults, SandboxState

PROVIDERS = ("pipedrive", "asana", "google")
SANDBOX_CLIENT_ID = "relay-hub-sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # a demo app's secret, known to anyone with the sandbox


def sandbox_origin(base_url: str, provider: str) -> str:
    return f"{base_url.rstrip('/')}/sandbox/{provider}"


def build_emulators(instance_path: Path | None, base_url: str, settings: Any) -> dict[str, Flask]:
    """One app per provider, their OAuth client registered with the hub's callback URLs."""
    apps: dict[str, Flask] = {}
    persist = settings["sandbox.persist"] and instance_path is not None
    for provider in PROVIDERS:
        module = importlib.import_module(f"{__name__}.{provider}")
        state = SandboxState(Path(instance_path) / "sandbox" / f"{provider}.json" if persist else None)
        client = {"client_id": settings[f"{provider}.client_id"] or SANDBOX_CLIENT_ID,
                  "client_secret": settings[f"{provider}.client_secret"] or SANDBOX_CLIENT_SECRET,
                  "redirect_uris": [f"{base_url.rstrip('/')}/oauth/{provider}/callback"], "name": "Relay Hub"}
        options: dict[str, Any] = {"clients": [client]}
        # where people reach it (the connector's `origin` setting, else the hub's mount point): the
        # links it hands out (Asana's permalinks) open its own pages, not the real provider's site
        options["permalink_base"] = settings.get(f"{provider}.origin") or sandbox_origin(base_url, provider)
        if provider == "pipedrive":
            client["callback_url"] = client["redirect_uris"][0]
            options["time_scale"] = settings["sandbox.webhook_time_scale"]
        apps[provider] = module.create_app(state=state, faults=Faults(), options=options)
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
</ul>
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
        return render_template_string(INDEX, root=request.script_root + "/sandbox")

    app.register_blueprint(bp)
    return emulators


def close(emulators: dict[str, Flask]) -> None:
    for emulator_app in emulators.values():
        sandbox = emulator_app.extensions.get("sandbox")
        state = getattr(sandbox, "state", None)
        if state is not None:
            state.close()

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
from typing import Any, Callable, Mapping

from flask import Blueprint, Flask, render_template_string, request
from markupsafe import Markup, escape
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from .common import Faults, SandboxState

PROVIDERS = ("pipedrive", "asana", "google")       # the order the sandbox's index lists its own


def built_in() -> tuple[str, ...]:
    """The connectors (from their CONNECTOR registry) that have an emulator folder here."""
    from hub import connectors

    here = Path(__file__).parent
    have = [n for n in connectors.available() if (here / n / "__init__.py").is_file()]
    return tuple(sorted(have, key=lambda n: (PROVIDERS.index(n) if n in PROVIDERS else len(PROVIDERS), n)))
SANDBOX_CLIENT_ID = "relay-hub-sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # a demo app's secret, known to anyone with the sandbox

_registered: dict[str, tuple[Callable[..., Flask], str, str]] = {}
_lock = threading.Lock()


def register(name: str, create_app: Callable[..., Flask], title: str | None = None, page: str = "") -> None:
    """Mount `create_app(state=, faults=, options=)` at /sandbox/<name>/ in hubs built from now on.
    Its options: `clients` (the hub's OAuth client, as the built-in emulators get it) and
    `base_url` (the emulator's own public root). `page`: its page for people, under that root."""
    with _lock:
        _registered[name] = (create_app, title or name, page.lstrip("/"))


def unregister(name: str) -> None:
    with _lock:
        _registered.pop(name, None)


def providers() -> tuple[str, ...]:
    """Every emulator a hub built now mounts: the built-in ones, then the registered ones."""
    with _lock:
        registered = sorted(_registered)
    own = built_in()
    return own + tuple(n for n in registered if n not in own)


def sandbox_origin(base_url: str, provider: str) -> str:
    return f"{base_url.rstrip('/')}/sandbox/{provider}"


class Emulators(Mapping):
    """The emulators a hub mounts, each built the first time it is asked for (a request under its
    prefix, or code that reads it): a hub that never touches one pays nothing for it, and building
    six Flask apps' routes is most of the cost of starting a hub."""

    def __init__(self, names: tuple[str, ...], build: Callable[[str], Flask]):
        self._names = names
        self._build = build
        self._apps: dict[str, Flask] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> Flask:
        if name not in self._names:
            raise KeyError(name)
        with self._lock:
            if name not in self._apps:
                self._apps[name] = self._build(name)
            return self._apps[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def built(self) -> dict[str, Flask]:
        with self._lock:
            return dict(self._apps)

    def wsgi(self, name: str) -> Callable:
        return lambda environ, start_response: self[name](environ, start_response)


def build_emulators(instance_path: Path | None, base_url: str, settings: Any) -> dict[str, Flask]:
    """One app per provider, their OAuth client registered with the hub's callback URLs."""
    return {name: _build_one(name, instance_path, base_url, settings) for name in providers()}


def _build_one(provider: str, instance_path: Path | None, base_url: str, settings: Any) -> Flask:
    persist = settings["sandbox.persist"] and instance_path is not None
    with _lock:
        registered = dict(_registered)
    if provider in registered:
        create_app = registered[provider][0]
    else:
        create_app = importlib.import_module(f"{__name__}.{provider}").create_app
    state = SandboxState(Path(instance_path) / "sandbox" / f"{provider}.json" if persist else None)
    client = {"client_id": settings.get(f"{provider}.client_id") or SANDBOX_CLIENT_ID,
              "client_secret": settings.get(f"{provider}.client_secret") or SANDBOX_CLIENT_SECRET,
              "redirect_uris": [f"{base_url.rstrip('/')}/oauth/{provider}/callback"], "name": "Relay Hub"}
    options: dict[str, Any] = {"clients": [client]}
    options["hub_url"] = base_url.rstrip("/")     # the hub's own root: app-wide webhook targets live there
    # where people reach it (the connector's `origin` setting, else the hub's mount point): the
    # links it hands out (Asana's permalinks) open its own pages, not the real provider's site
    options["permalink_base"] = settings.get(f"{provider}.origin") or sandbox_origin(base_url, provider)
    if provider in registered:
        options["base_url"] = sandbox_origin(base_url, provider)
    if provider == "pipedrive":
        client["callback_url"] = client["redirect_uris"][0]
        options["time_scale"] = settings["sandbox.webhook_time_scale"]
    return create_app(state=state, faults=Faults(), options=options)


# A bar on every sandbox page (the consent screens aside): the way to the other sandbox pages and
# back to the hub, for the person who plays the CRM user and then looks at what landed.
NAV_STYLE = ("display:flex;flex-wrap:wrap;gap:.2rem 1rem;align-items:center;background:#fff8db;color:#4d3d00;"
             "border-bottom:1px solid #e8d48b;padding:.35rem 1rem;font:13px/1.4 system-ui,sans-serif")
NAV_LINKS = (("pipedrive", "Pipedrive"), ("asana", "Asana"), ("google", "Google Contacts"))


def nav_bar(root: str, current: str | None = None, extra: tuple[tuple[str, str, str], ...] = ()) -> Markup:
    """`root`: where the sandbox is mounted (`/sandbox`, behind any prefix of the hub). `extra`: other
    mounted emulators with a page of their own, as (name, title, page)."""
    hub = root[: -len("/sandbox")] or ""
    links = [f'<a href="{escape(hub)}/" style="color:#0b5cad;font-weight:600">← Relay Hub</a>',
             f'<a href="{escape(root)}/" style="color:#0b5cad">Sandbox</a>']
    mounted = built_in()    # an emulator whose connector is not installed is not mounted: no link to it
    for provider, label, page in [(p, lab, "_sandbox/ui/") for p, lab in NAV_LINKS if p in mounted] + list(extra):
        if provider == current:
            links.append(f'<b aria-current="page">{escape(label)}</b>')
        else:
            links.append(f'<a href="{escape(root)}/{provider}/{escape(page)}" style="color:#0b5cad">{escape(label)}</a>')
    return Markup(f'<nav class="sandbox-nav" aria-label="Sandbox pages" style="{NAV_STYLE}">'
                  f'<span>Sandbox:</span>{"".join(links)}</nav>')


def _nav_for(provider: str, extra: Callable[[], tuple[tuple[str, str, str], ...]] = tuple):
    def context() -> dict[str, Any]:
        root = request.script_root
        if not root.endswith(f"/sandbox/{provider}"):
            return {}   # an emulator served on its own (tests): no hub around it
        return {"sandbox_nav": lambda: nav_bar(root[: -len(provider) - 1], provider, extra())}
    return context


def _own_pages(emulators: Mapping[str, Flask]) -> tuple[tuple[str, str, str], ...]:
    """Built-in emulators beyond the first three that declare their page (`SANDBOX_TITLE`, `SANDBOX_PAGE`)."""
    known = {p for p, _ in NAV_LINKS}
    return tuple((name, emulators[name].config["SANDBOX_TITLE"], emulators[name].config.get("SANDBOX_PAGE", ""))
                 for name in emulators if name not in known and emulators[name].config.get("SANDBOX_TITLE"))


INDEX = """<!doctype html><html><head><meta charset="utf-8"><title>Relay Hub sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#222}
a{color:#0b5cad}li{margin:.4rem 0}code{background:#f3f3f3;padding:0 .3rem;overflow-wrap:anywhere}
nav.sandbox-nav{margin:-2rem -1rem 1.5rem}</style></head><body>
{{ nav }}
<h1>Relay Hub sandbox</h1>
<p>Local emulators of the providers, so you can try the hub with no accounts and no network.
Nothing here talks to the real services.</p>
<ul>
<li><a href="{{ root }}/pipedrive/_sandbox/ui/">Pipedrive</a>: play the CRM user (deals, stages, won/lost,
leads, persons, notes, files), see webhooks and deliveries, installs and fault knobs.</li>
<li><a href="{{ root }}/asana/_sandbox/ui/">Asana</a>: the tasks, projects and attachments the hub created.</li>
<li><a href="{{ root }}/google/_sandbox/ui/">Google Contacts</a>: labels and contacts per account; edit by hand to try two-way sync.</li>
{% for name, title, page in own %}<li><a href="{{ root }}/{{ name }}/{{ page }}">{{ title }}</a>: play the CRM user,
see the app's webhook deliveries, installs and fault knobs.</li>
{% endfor %}{% for name, title, page in extra %}<li>
{%- if page %}<a href="{{ root }}/{{ name }}/{{ page }}">{{ title }}</a>{% else %}{{ title }}{% endif -%}
: a registered emulator, served at <code>{{ root }}/{{ name }}/</code>.</li>
{% endfor %}</ul>
<p>Try the README's step 3 here: on the Pipedrive page create a deal, move it, mark it won or lost, add a lead
and edit a person; then look at the Asana and Google Contacts pages, and at the hub's
<a href="{{ hub }}/">run log</a> (under Settings).</p>
<p>Fault knobs are also scriptable: <code>flask --app hub sandbox faults pipedrive error_rate=0.1</code>.</p>
</body></html>"""


def mount(app: Flask, instance_path: Path | None, base_url: str, settings: Any) -> Emulators:
    from hub.web.headers import add_security_headers

    def build(provider: str) -> Flask:
        emulator = _build_one(provider, instance_path, base_url, settings)
        emulator.after_request(add_security_headers)  # its consent screens are as much a clickjacking target
        emulator.context_processor(_nav_for(provider, own))
        return emulator

    emulators = Emulators(providers(), build)

    def own() -> tuple[tuple[str, str, str], ...]:
        return _own_pages(emulators)

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {f"/sandbox/{p}": emulators.wsgi(p) for p in emulators})
    bp = Blueprint("sandbox_index", __name__)

    @bp.get("/sandbox/")
    def index():
        own_pages = own()
        extra = [(name, *_registered.get(name, (None, name, ""))[1:]) for name in emulators
                 if name not in built_in() and name not in {o[0] for o in own_pages}]
        root = request.script_root + "/sandbox"
        return render_template_string(INDEX, root=root, hub=request.script_root, nav=nav_bar(root, None, own_pages),
                                      extra=extra, own=own_pages)

    app.register_blueprint(bp)

    @app.context_processor
    def sandbox_link():
        """The hub's pages link to the sandbox while it is on."""
        return {"sandbox_home": request.script_root + "/sandbox/"}
    return emulators


def close(emulators: Mapping[str, Flask]) -> None:
    built = emulators.built() if isinstance(emulators, Emulators) else dict(emulators)
    for emulator_app in built.values():
        sandbox = emulator_app.extensions.get("sandbox")
        state = getattr(sandbox, "state", None)
        if state is not None:
            state.close()

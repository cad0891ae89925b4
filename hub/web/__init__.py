"""Web layer: health endpoints, the pages, the JSON API, and the access checks that guard them."""
import importlib
import importlib.util
from datetime import timedelta

from flask import Flask

MAX_ID = 2**63 - 1  # BIGINT: an id in a URL beyond it names nothing

from .health import bp as health_bp


FEATURE_WEB_MODULES = ("hub.rules.web", "hub.sync.web", "hub.webhooks.web", "hub.web.metrics")


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its package is not there at all
        return False


def register_web(app: Flask) -> None:
    from . import api, pages

    @app.before_request
    def ids_in_range():
        """An `<int:...>` beyond the database's range is simply not found, never a 500."""
        from flask import abort, request
        if any(isinstance(v, int) and v > MAX_ID for v in (request.view_args or {}).values()):
            abort(404, "no such object")

    from .access import install_access_checks
    from .headers import configure_session_cookie, install_security_headers
    from .signin import install_session_check

    app.config.update(PERMANENT_SESSION_LIFETIME=timedelta(days=7))
    configure_session_cookie(app, app.extensions["hub"].base_url)
    install_security_headers(app)
    install_session_check(app)  # before the access checks: an ended session is no session for them
    install_access_checks(app)
    app.register_blueprint(health_bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    from ..webhooks.ingest import bp as hooks_bp
    app.register_blueprint(hooks_bp)
    # features that bring pages of their own: each module exposes `bp` (and its templates folder)
    for name in FEATURE_WEB_MODULES:
        if _exists(name):
            app.register_blueprint(importlib.import_module(name).bp)


__all__ = ["health_bp", "register_web"]

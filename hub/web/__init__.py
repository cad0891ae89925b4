"""Web layer: health endpoints, the pages, the JSON API, and the access checks that guard them.
Feature pages (rules, sync, the run log, metrics) come from the list in hub/app.py."""
from collections.abc import Iterable
from datetime import timedelta

from flask import Flask
from werkzeug.routing import IntegerConverter

MAX_ID = 2**63 - 1  # BIGINT: an id in a URL beyond it names nothing

from .health import bp as health_bp



class AsciiIntegerConverter(IntegerConverter):
    """`<int:...>` of ASCII digits only: werkzeug's `\\d+` also takes `١٢` (and Python's int() reads it)."""

    regex = r"[0-9]+"


def register_web(app: Flask, features: Iterable = ()) -> None:
    """The hub's own pages and API, then each feature's blueprint (`features`: Flask blueprints)."""
    from . import api, pages

    app.url_map.converters["int"] = AsciiIntegerConverter

    @app.before_request
    def ids_in_range():
        """An `<int:...>` beyond the database's range is simply not found, never a 500."""
        from flask import abort, request
        if any(isinstance(v, int) and v > MAX_ID for v in (request.view_args or {}).values()):
            abort(404, "no such object")

    @app.before_request
    def known_provider():
        """A `<provider>` in any route that names no connector is not found, whatever the method."""
        from flask import abort, request

        from .. import connectors
        provider = (request.view_args or {}).get("provider")
        if provider is not None and provider not in connectors.available():
            abort(404, "provider: no such provider")   # a page or JSON, as hub/web/errors.py decides

    from .access import install_access_checks
    from .bodies import install_bodies
    from .errors import install_error_handlers
    from .headers import configure_session_cookie, install_security_headers
    from .signin import install_session_check

    install_bodies(app)
    install_error_handlers(app)  # hub/web/errors.py: pages for browsers, JSON for the API

    app.config.update(PERMANENT_SESSION_LIFETIME=timedelta(days=7))
    configure_session_cookie(app, app.extensions["hub"].base_url)
    install_security_headers(app)
    install_session_check(app)  # before the access checks: an ended session is no session for them
    install_access_checks(app)
    app.register_blueprint(health_bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    from .openapi import bp as openapi_bp
    app.register_blueprint(openapi_bp)
    for blueprint in features:
        app.register_blueprint(blueprint)


__all__ = ["health_bp", "register_web"]

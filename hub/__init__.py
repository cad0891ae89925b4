"""Relay Hub: a self-hosted integration hub for CRMs. `create_app()` builds one hub process."""


def create_app(config=None, **kwargs):
    from .app import create_app as _create_app

    return _create_app(config, **kwargs)


__all__ = ["create_app"]

"""The CRM side of a rule: the installation's CRM connector's `CrmSource` (CONNECTOR.source) for a
connection. Rules, templates and previews see only its neutral `SourceRecord`."""
from __future__ import annotations

from typing import Any

from .. import connectors
from ..connectors.contract.records import SourceContext
from ..store import Connection
from . import catalogs, connections


class NoSource(connections.NoConnection):
    """The CRM's connector offers no records to rules."""


def crm_source(services: Any, connection: Connection, *, refresh: bool = False) -> Any:
    connector = connectors.connector(connection.provider)
    if connector.source is None:
        raise NoSource(f"{connector.title} offers no records to rules")
    context = SourceContext(client=connections.client(services, connection), api_base=connection.api_base,
                            catalog=catalogs.Loader(services, connection, refresh),
                            settings=connections.settings_for(services, connector.name))
    return connector.source(context)


def _field_dict(info: Any) -> dict[str, Any]:
    if isinstance(info, dict):
        return {"key": str(info.get("key")), "label": str(info.get("label") or info.get("key")),
                "type": str(info.get("type") or ""), "custom": bool(info.get("custom")), "options": [
                    {"id": str(o.get("id")), "label": str(o.get("label", ""))} for o in info.get("options") or []
                    if isinstance(o, dict)]}
    return {"key": info.key, "label": info.label or info.key, "type": info.type or "",
            "custom": bool(getattr(info, "custom", False)),
            "options": [{"id": str(value), "label": str(label)} for value, label in info.options or ()]}


def fields(services: Any, connection: Connection, kind: str, *, refresh: bool = False) -> list[dict[str, Any]]:
    """The fields conditions and templates may name on `kind` objects (as dicts: key, label, type,
    options [{id, label}]), through the one catalog cache."""
    def load() -> list[dict[str, Any]]:
        return [_field_dict(f) for f in crm_source(services, connection).fields(kind)]
    return catalogs.CACHE.get(catalogs.cache_key(services, connection, f"fields:{kind}"), catalogs.ttl(services), load, refresh)


def recent(services: Any, connection: Connection, kind: str) -> list[Any]:
    return crm_source(services, connection).recent(kind)


def recent_choices(services: Any, connection: Connection, kind: str, *, refresh: bool = False) -> list[dict[str, str]]:
    """Recently updated `kind` objects as {id, title} (the preview's record picker), through the one
    catalog cache so the editor's page views cost no extra calls."""
    def load() -> list[dict[str, str]]:
        return [{"id": str(r.id), "title": str(r.title or r.data.get("title") or r.data.get("name") or r.id)}
                for r in recent(services, connection, kind)]
    return catalogs.CACHE.get(catalogs.cache_key(services, connection, f"recent:{kind}"), catalogs.ttl(services), load, refresh)

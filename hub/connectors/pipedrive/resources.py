"""Metadata for the settings page: pipelines with their stages, deal and person field catalogs.

Pages render dropdowns from these on every view, while the data changes rarely and each list costs
API tokens (FACTS §14), so results are cached per client for a few minutes (`refresh=True` after
the admin says "reload"). Custom fields are identified by their 40-char hash key, which differs per
company: the catalog pairs each key with its label so mappings can show names but store keys."""
from __future__ import annotations

import copy
import threading
import time
import weakref
from typing import Any, Callable, TypedDict

from .client import PipedriveClient

CACHE_SECONDS = 300.0


class StageInfo(TypedDict):
    id: int
    name: str
    order_nr: int


class PipelineInfo(TypedDict):
    id: int
    name: str
    order_nr: int
    stages: list[StageInfo]


class OptionInfo(TypedDict):
    id: Any
    label: str


class FieldInfo(TypedDict):
    key: str                 # what the API uses: a standard name (`title`) or a 40-char hash
    label: str
    type: str                # Pipedrive field_type: varchar, enum, set, monetary, date, ...
    options: list[OptionInfo]  # enum/set choices, [] otherwise
    custom: bool


_cache: "weakref.WeakKeyDictionary[PipedriveClient, dict[str, tuple[float, Any]]]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _cached(client: PipedriveClient, name: str, load: Callable[[], Any], ttl: float, refresh: bool) -> Any:
    now = time.monotonic()
    with _lock:
        entry = _cache.get(client, {}).get(name)
    if entry is None or refresh or entry[0] <= now:
        value = load()
        with _lock:
            _cache.setdefault(client, {})[name] = (now + ttl, value)
    else:
        value = entry[1]
    return copy.deepcopy(value)   # callers may sort or annotate without touching the cache


def pipelines_with_stages(client: PipedriveClient, *, ttl: float = CACHE_SECONDS,
                          refresh: bool = False) -> list[PipelineInfo]:
    """Pipelines in board order, each with its stages in order (two list calls, not one per pipeline)."""
    def load() -> list[PipelineInfo]:
        by_pipeline: dict[int, list[StageInfo]] = {}
        for s in client.stages():
            if not s.get("is_deleted"):
                by_pipeline.setdefault(s["pipeline_id"], []).append(
                    {"id": s["id"], "name": s["name"], "order_nr": s.get("order_nr", 0)})
        out: list[PipelineInfo] = []
        for p in sorted(client.pipelines(), key=lambda p: (p.get("order_nr", 0), p["id"])):
            if p.get("is_deleted"):
                continue
            stages = sorted(by_pipeline.get(p["id"], []), key=lambda s: (s["order_nr"], s["id"]))
            out.append({"id": p["id"], "name": p["name"], "order_nr": p.get("order_nr", 0), "stages": stages})
        return out
    return _cached(client, "pipelines", load, ttl, refresh)


def _catalog(fields: list[dict]) -> list[FieldInfo]:
    out: list[FieldInfo] = []
    for f in fields:
        key = f.get("field_code") or f.get("key")          # v2 field_code; v1 called it key
        if not key:
            continue
        options = [{"id": o["id"], "label": o.get("label", "")} for o in (f.get("options") or [])]
        out.append({"key": key, "label": f.get("field_name") or f.get("name") or key,
                    "type": f.get("field_type", ""), "options": options, "custom": bool(f.get("is_custom_field"))})
    return out


def deal_field_catalog(client: PipedriveClient, *, ttl: float = CACHE_SECONDS,
                       refresh: bool = False) -> list[FieldInfo]:
    """Deal fields (leads share them); custom ones flagged, enum/set options with ids and labels."""
    return _cached(client, "deal_fields", lambda: _catalog(client.deal_fields()), ttl, refresh)


def person_field_catalog(client: PipedriveClient, *, ttl: float = CACHE_SECONDS,
                         refresh: bool = False) -> list[FieldInfo]:
    return _cached(client, "person_fields", lambda: _catalog(client.person_fields()), ttl, refresh)

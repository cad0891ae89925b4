"""Small formatting helpers: Pipedrive's three timestamp styles, cursors, custom-field hashes.

v1 shows `2019-12-09 13:59:21`, v2 `2024-01-01T00:00:00Z`, webhook meta and lead times carry
milliseconds. State keeps epoch seconds (floats) so comparisons such as `updated_since` are exact."""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from typing import Any


class BadRequest(Exception):
    """A client error the API renders as 400 in Pipedrive's general error body."""

    def __init__(self, message: str, status: int = 400, info: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.info = info


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def v1_time(ts: float | None) -> str | None:
    return None if ts is None else _dt(ts).strftime("%Y-%m-%d %H:%M:%S")


def v2_time(ts: float | None) -> str | None:
    return None if ts is None else _dt(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms_time(ts: float | None) -> str | None:
    if ts is None:
        return None
    dt = _dt(ts)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(value: str, name: str = "updated_since") -> float:
    """RFC 3339 (v2) or `YYYY-MM-DD HH:MM:SS` (v1, UTC); anything else is a 400."""
    text = (value or "").strip()
    if not text:
        raise BadRequest(f"Invalid {name}: empty value")
    try:
        if "T" in text:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        else:
            dt = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BadRequest(f"Invalid {name}: expected RFC 3339 date-time, got {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def field_hash(company_id: int, entity: str, name: str) -> str:
    """A 40-char hex key, stable for a company+field, random-looking like Pipedrive's."""
    return hashlib.sha1(f"{company_id}:{entity}:{name}".encode()).hexdigest()


def encode_cursor(field: str, value: Any, direction: str, item_id: Any) -> str:
    raw = json.dumps({"field": field, "fieldValue": value, "sortDirection": direction, "id": item_id},
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(data, dict) or not {"field", "fieldValue", "sortDirection", "id"} <= data.keys():
            raise ValueError
        return data
    except Exception:
        raise BadRequest("Invalid cursor", info="The cursor is malformed or belongs to another query.") from None

"""What Pipedrive's ids look like: deals, persons, organizations, pipelines, stages, users, files
and webhooks are positive integers; leads are UUIDs (FACTS §10)."""
from __future__ import annotations

import re
import uuid

_INT = re.compile(r"[0-9]{1,18}")


def positive_int(value: str) -> str:
    if not _INT.fullmatch(value) or int(value) == 0:
        raise ValueError("a Pipedrive id is a positive whole number")
    return str(int(value))


def lead_uuid(value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != value.lower():
        raise ValueError("a Pipedrive lead id is a UUID such as adf21080-0e10-11eb-879b-05d71fb426ec")
    return str(parsed)


ID_KINDS = {kind: positive_int for kind in
            ("deal", "person", "organization", "pipeline", "stage", "user", "file", "webhook")}
ID_KINDS["lead"] = lead_uuid

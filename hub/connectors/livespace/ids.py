"""What Livespace's ids look like: contacts, companies, deals, todos, users, processes, stages and
task types are UUIDs (`Contact/get?id=<uuid>`; webhooks name objects by UUID)."""
from __future__ import annotations

import uuid


def livespace_uuid(value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != value.lower():
        raise ValueError("a Livespace id is a UUID such as 3f2b8c1e-5d4a-4b7e-9c1d-2a6f8e0b7c35")
    return str(parsed)


ID_KINDS = {kind: livespace_uuid for kind in
            ("deal", "person", "company", "organization", "task", "user", "pipeline", "stage", "task_type")}

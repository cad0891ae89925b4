"""What HubSpot's ids look like: CRM object ids, owner ids, user ids and portal ids are positive
integers; pipeline and stage ids are account-made strings (`default`, `lead-pipeline-id`,
`appointmentscheduled`, or numbers)."""
from __future__ import annotations

import re

_INT = re.compile(r"[0-9]{1,18}")
_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def positive_int(value: str) -> str:
    if not _INT.fullmatch(value) or int(value) == 0:
        raise ValueError("a HubSpot id is a positive whole number")
    return str(int(value))


def internal_name(value: str) -> str:
    if not _KEY.fullmatch(value):
        raise ValueError("a HubSpot pipeline or stage id is letters, digits and - _ . : (up to 100)")
    return value


ID_KINDS = {kind: positive_int for kind in
            ("deal", "person", "contact", "organization", "company", "lead", "task", "user", "owner", "account")}
ID_KINDS.update({"pipeline": internal_name, "stage": internal_name})

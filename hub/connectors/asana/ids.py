"""What Asana's ids look like: every object's gid is a numeric string (FACTS §1: strings that look numeric)."""
from __future__ import annotations

import re

_GID = re.compile(r"[0-9]{1,30}")


def gid(value: str) -> str:
    if not _GID.fullmatch(value):
        raise ValueError("an Asana gid is a string of digits")
    return value


ID_KINDS = {kind: gid for kind in ("workspace", "team", "project", "task", "user", "section", "tag", "attachment")}

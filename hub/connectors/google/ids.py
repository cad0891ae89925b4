"""What Google People API resource names look like: `people/<id>` for a contact and
`contactGroups/<id>` for a label, the id being letters, digits, '_' or '-' (FACTS §3, §6)."""
from __future__ import annotations

import re


def _resource(collection: str):
    pattern = re.compile(rf"{collection}/[A-Za-z0-9_-]{{1,200}}")

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"a Google resource name such as {collection}/c1234567890")
        return value
    return check


ID_KINDS = {"person": _resource("people"), "contact_group": _resource("contactGroups")}

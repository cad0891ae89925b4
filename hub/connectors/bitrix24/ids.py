"""What Bitrix24's ids look like: deals, leads, contacts, companies, tasks, users and categories
are positive whole numbers; stages and lead statuses are codes such as `C2:WON` or `NEW`."""
from __future__ import annotations

import re

_INT = re.compile(r"[0-9]{1,18}")
_CODE = re.compile(r"[A-Za-z0-9_:\-]{1,50}")


def positive_int(value: str) -> str:
    if not _INT.fullmatch(value) or int(value) == 0:
        raise ValueError("a Bitrix24 id is a positive whole number")
    return str(int(value))


def category(value: str) -> str:
    """Deal categories (pipelines) count from 0, the default one."""
    if not _INT.fullmatch(value):
        raise ValueError("a Bitrix24 pipeline id is a whole number (0 is the default pipeline)")
    return str(int(value))


def code(value: str) -> str:
    if not _CODE.fullmatch(value):
        raise ValueError("a Bitrix24 stage or status is a code such as C2:WON or NEW")
    return value


ID_KINDS = {kind: positive_int for kind in ("deal", "lead", "person", "contact", "company", "organization",
                                            "task", "user")}
ID_KINDS.update(pipeline=category, category=category, stage=code, status=code)

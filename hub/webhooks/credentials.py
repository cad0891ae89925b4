"""Per-installation HTTP Basic credentials the hub gives the CRM when it registers its webhooks."""
from __future__ import annotations

import secrets as pysecrets
from typing import Any

from sqlalchemy.orm import Session


def _ref(installation_id: int) -> str:
    return f"installation:{installation_id}:webhook_password"


def webhook_credentials(services: Any, session: Session, installation_id: int, *, create: bool = False) -> tuple[str, str]:
    """(user, password); the password is made once and kept encrypted (registration reuses it)."""
    password = services.secrets.get(session, _ref(installation_id))
    if password is None and create:
        password = pysecrets.token_urlsafe(32)
        services.secrets.put(session, _ref(installation_id), password)
    return f"relayhub-{installation_id}", password or ""

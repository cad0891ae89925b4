"""Per-installation HTTP Basic credentials the hub gives the CRM when it registers its webhooks."""
from __future__ import annotations

import secrets as pysecrets
from typing import Any

from sqlalchemy.orm import Session


def password_ref(installation_id: int) -> str:
    return f"installation:{installation_id}:webhook_password"


def webhook_credentials(services: Any, session: Session, installation_id: int, *, create: bool = False) -> tuple[str, str]:
    """(user, password); the password is made once and kept encrypted (registration reuses it)."""
    password = services.secrets.get(session, password_ref(installation_id))
    if password is None and create:
        password = pysecrets.token_urlsafe(32)
        services.secrets.put(session, password_ref(installation_id), password)
    return f"relayhub-{installation_id}", password or ""


def token_ref(installation_id: int) -> str:
    return f"installation:{installation_id}:delivery_token"


def delivery_token(services: Any, session: Session, installation_id: int) -> str:
    """The token the provider proves its deliveries with (handed over by a delivery: `TokenClaim`), or ""."""
    return services.secrets.get(session, token_ref(installation_id)) or ""


def keep_delivery_token(services: Any, session: Session, installation_id: int, token: str) -> None:
    services.secrets.put(session, token_ref(installation_id), token)


def forget_delivery_token(services: Any, session: Session, installation_id: int) -> None:
    services.secrets.delete(session, token_ref(installation_id))


def prove_claim(services: Any, installation_id: int, claim: Any) -> bool:
    """Does the access token a delivery offers as proof (`TokenClaim.proof`) work at the
    installation's own API root, for its account? Asked through the connector's identity hook, at
    the address the hub learned at install (never one the delivery names)."""
    import logging

    from .. import connectors
    from ..oauth.clients import StaticToken
    from ..store import Installation

    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        if installation is None or installation.status != "active" or not installation.api_domain:
            return False
        provider, account, api_base = installation.provider, installation.company_id, installation.api_domain
    access = str((claim.proof or {}).get("access_token") or "")
    connector = connectors.connector(provider)
    hook = connector.identity or getattr(connector.auth, "identity", None)
    if not access or hook is None or connector.client is None:
        return False
    try:
        client = connector.client(api_base, StaticToken(access))
        who = hook(client, {**claim.proof, "access_token": access})
    except Exception as exc:   # refused, unreachable, odd answer: not proven (the delivery is refused)
        logging.getLogger("hub.webhooks").info("installation %s: a delivery's token claim was not proven: %s",
                                               installation_id, type(exc).__name__)
        return False
    return bool(who.account_key) and who.account_key == account and bool(who.user_id)

"""Sign-in sessions held in the database, so that ending one is real.

A signed cookie alone cannot be taken back: a copy keeps working after sign-out. Each sign-in
therefore gets a random id; the cookie carries it and the `web_sessions` table its SHA-256. A
request is signed in only while the row exists (one primary-key read), and every web process sees
the same table, so sign-out, a visibility change that removes a user and an uninstall end the
sessions everywhere at once. Nothing here knows about Flask."""
from __future__ import annotations

import hashlib
import secrets as pysecrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete

from ..store import WebSession


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def open_session(session, installation_id: int, crm_user_id: str, now: datetime, lifetime: timedelta) -> str:
    """A new session id for this user (never reused: a sign-in never continues an older session)."""
    session.execute(delete(WebSession).where(WebSession.expires_at <= now))  # indexed; keeps the table small
    sid = pysecrets.token_urlsafe(32)
    session.add(WebSession(id=_digest(sid), installation_id=installation_id, crm_user_id=str(crm_user_id),
                           created_at=now, expires_at=now + lifetime))
    return sid


def is_alive(session, sid: str | None, installation_id: int, crm_user_id: str, now: datetime) -> bool:
    if not isinstance(sid, str) or not sid:
        return False
    row = session.get(WebSession, _digest(sid))
    return (row is not None and row.installation_id == installation_id and row.crm_user_id == str(crm_user_id)
            and row.expires_at > now)


def close_session(session, sid: str | None) -> None:
    if isinstance(sid, str) and sid:
        session.execute(delete(WebSession).where(WebSession.id == _digest(sid)))


def end_sessions(session, installation_id: int, *, users: Iterable[str] | None = None) -> int:
    """End the sessions of an installation: all of them, or only those of `users`."""
    query = delete(WebSession).where(WebSession.installation_id == installation_id)
    if users is not None:
        query = query.where(WebSession.crm_user_id.in_([str(u) for u in users]))
    return session.execute(query).rowcount

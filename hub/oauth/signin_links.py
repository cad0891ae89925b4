"""Hub accounts for CRMs without OAuth: members sign in with one-time links sent to their e-mail.

A CRM that has OAuth signs its users in itself. One that only has API keys (a key per person) cannot:
a colleague the admin shared the hub with has no key to paste and should not need one. So the hub
mails a link instead: to every member the admin adds (an invitation, valid for days) and to anyone
who asks on the sign-in page (valid for minutes). A link is single-use, only its SHA-256 is stored,
and asking answers the same whether or not the address belongs to anyone (no enumeration).

Who is a member is decided by `role_of` when the link is used, not when it was sent: a link mailed
before the admin removed someone signs nobody in."""
from __future__ import annotations

import hashlib
import re
import secrets as pysecrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from ..mail import queue_mail
from ..store import Installation, InstallationUser, SignInLink
from .connections import audit
from .members import role_of

LOGIN_TTL = timedelta(minutes=15)
INVITE_TTL = timedelta(days=7)
PER_ADDRESS_PER_HOUR = 5          # links asked for one address; more are silently not sent
MAX_EMAIL_CHARS = 254
MAX_TOKEN_CHARS = 100
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,253}")


class LinkError(ValueError):
    """The link cannot sign anyone in (unknown, used, expired, or the person lost access)."""


@dataclass(frozen=True)
class Redeemed:
    installation_id: int
    crm_user_id: str
    name: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(raw: Any) -> str:
    """The address as typed, trimmed and lower-cased; ValueError naming the field when it is not one."""
    text = raw.strip().lower() if isinstance(raw, str) else ""
    if not text:
        raise ValueError("email: enter your e-mail address")
    if len(text) > MAX_EMAIL_CHARS or not EMAIL.fullmatch(text) or any(ord(c) < 32 for c in text):
        raise ValueError("email: not an e-mail address")
    return text


def issue(session, installation_id: int, crm_user_id: str, email: str, purpose: str, now: datetime) -> str:
    """A new link's token (shown once, in the e-mail); the row keeps only its digest."""
    token = pysecrets.token_urlsafe(32)
    ttl = INVITE_TTL if purpose == "invite" else LOGIN_TTL
    session.add(SignInLink(token_hash=_digest(token), installation_id=installation_id, crm_user_id=crm_user_id,
                           email=email, purpose=purpose, created_at=now, expires_at=now + ttl))
    return token


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/login/link/{token}"


def _members_with_address(session, provider: str, email: str) -> list[tuple[Installation, str, str]]:
    """(installation, CRM user id, name) of every active installation of `provider` that admits a
    person with this address now."""
    found: dict[tuple[int, str], tuple[Installation, str, str]] = {}
    installations = session.scalars(select(Installation).where(
        Installation.provider == provider, Installation.status == "active")).all()
    by_id = {i.id: i for i in installations}
    for inst in installations:
        if (inst.installer_email or "").lower() == email:
            found[(inst.id, inst.installer_user_id)] = (inst, inst.installer_user_id, inst.installer_name)
    if by_id:
        rows = session.scalars(select(InstallationUser).where(
            InstallationUser.installation_id.in_(by_id), func.lower(InstallationUser.email) == email)).all()
        for row in rows:
            found.setdefault((row.installation_id, row.crm_user_id),
                             (by_id[row.installation_id], row.crm_user_id, row.name))
    return [entry for entry in found.values() if role_of(session, entry[0], entry[1]) is not None]


def request_links(services: Any, provider: str, title: str, raw_email: Any) -> None:
    """Mail a sign-in link for each installation that admits this address (usually one). Raises
    ValueError only for input that is not an address; says nothing about whether anyone has it."""
    email = normalize_email(raw_email)
    now = services.queue.clock.now()
    with services.db.begin() as session:
        recent = session.scalar(select(func.count()).select_from(SignInLink).where(
            SignInLink.email == email, SignInLink.purpose == "login", SignInLink.created_at > now - timedelta(hours=1)))
        if recent >= PER_ADDRESS_PER_HOUR:
            return
        for inst, user_id, name in _members_with_address(session, provider, email):
            token = issue(session, inst.id, user_id, email, "login", now)
            minutes = int(LOGIN_TTL.total_seconds() // 60)
            queue_mail(services, session, email, f"Your Relay Hub sign-in link for {inst.company_name}",
                       f"Hello {name or ''},\n\nSign in to Relay Hub for {inst.company_name} ({title}) with this link:\n"
                       f"{link_url(services.base_url, token)}\n\n"
                       f"It works once and for {minutes} minutes. If you did not ask for it, ignore this e-mail.\n",
                       installation_id=inst.id)
            audit(session, inst.id, "hub", "signin.link_sent", user=user_id, purpose="login")


def invitation(services: Any, session, installation: Installation, crm_user_id: str, email: str) -> str:
    """The invitation link for a member the admin just added (valid for days, single use)."""
    token = issue(session, installation.id, crm_user_id, email.strip().lower(), "invite", services.queue.clock.now())
    return link_url(services.base_url, token)


def _row(session, token: Any) -> SignInLink | None:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return session.scalar(select(SignInLink).where(SignInLink.token_hash == _digest(token)))


def peek(services: Any, token: Any) -> Redeemed:
    """Who the link would sign in, without using it (the confirmation page a mail scanner may fetch)."""
    now = services.queue.clock.now()
    with services.db.begin() as session:
        row = _row(session, token)
        return _check(session, row, now)


def redeem(services: Any, token: Any) -> Redeemed:
    """Use the link: at most once, even when two browsers click at the same moment."""
    now = services.queue.clock.now()
    with services.db.begin() as session:
        row = _row(session, token)
        who = _check(session, row, now)
        used = session.execute(update(SignInLink).where(
            SignInLink.id == row.id, SignInLink.used_at.is_(None)).values(used_at=now)).rowcount
        if used != 1:
            raise LinkError("used")
        member = session.scalar(select(InstallationUser).where(
            InstallationUser.installation_id == row.installation_id, InstallationUser.crm_user_id == row.crm_user_id))
        if member is not None:
            member.last_login_at = now
        audit(session, row.installation_id, row.crm_user_id, "signin.link_used", purpose=row.purpose)
        return who


def _check(session, row: SignInLink | None, now: datetime) -> Redeemed:
    if row is None:
        raise LinkError("unknown")
    if row.used_at is not None:
        raise LinkError("used")
    if row.expires_at <= now:
        raise LinkError("expired")
    installation = session.get(Installation, row.installation_id)
    if role_of(session, installation, row.crm_user_id) is None:
        raise LinkError("no access")
    name = installation.installer_name if row.crm_user_id == installation.installer_user_id else ""
    if not name:
        member = session.scalar(select(InstallationUser.name).where(
            InstallationUser.installation_id == row.installation_id, InstallationUser.crm_user_id == row.crm_user_id))
        name = member or ""
    return Redeemed(row.installation_id, row.crm_user_id, name)

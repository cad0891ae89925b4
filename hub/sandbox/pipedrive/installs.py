"""Marketplace installs: who may use the app in the company ("app sharing"), consent, uninstall.

FACTS §4-5: an admin's first install picks Only me / Specific users / All users (+ optional e-mail
notice); consent stays per user; the app hears `POST callback {company_id, user_id, isShared}` when a
user installs and when the install goes back to private, and `DELETE callback {client_id, company_id,
user_id, timestamp}` (Basic client auth) when a user uninstalls. Mail is only recorded in an outbox."""
from __future__ import annotations

import copy
from typing import Any

from .util import BadRequest, ms_time

VISIBILITIES = ("me", "specific", "all")


class Installs:
    def __init__(self, sandbox):
        self.sb = sandbox

    @property
    def table(self) -> dict:
        return self.sb.data["pd_installs"]

    def get(self, client_id: str) -> dict | None:
        with self.sb.state.lock:
            rec = self.table.get(client_id)
            return copy.deepcopy(rec) if rec else None

    def all(self) -> list[dict]:
        with self.sb.state.lock:
            return [copy.deepcopy(r) for r in self.table.values()]

    @staticmethod
    def may_use(install: dict | None, user_id: int) -> bool:
        if install is None:
            return True
        return (user_id == install["installed_by"] or install["visibility"] == "all"
                or (install["visibility"] == "specific" and user_id in install["user_ids"]))

    def needs_setup(self, client_id: str, user_id: int) -> bool:
        """Step 1 is shown only to a company admin doing the first install of this app."""
        return self.get(client_id) is None and self.sb.user(user_id)["is_admin"]

    def _check_choice(self, visibility: str, user_ids: list[int]) -> list[int]:
        if visibility not in VISIBILITIES:
            raise BadRequest("visibility must be one of: " + ", ".join(VISIBILITIES))
        known = {u["id"] for u in self.sb.users()}
        for uid in user_ids:
            if uid not in known:
                raise BadRequest(f"user {uid} is not in the company")
        return sorted(set(user_ids)) if visibility == "specific" else []

    def authorize(self, client_id: str, user_id: int, redirect_uri: str, *, visibility: str | None = None,
                  user_ids: list[int] | None = None, notify: bool = False) -> dict:
        """Record one user's consent (creating the install on first use); returns the OAuth grant."""
        sb = self.sb
        user = sb.user(user_id)
        scopes = sb.client_options[client_id]["scopes"]
        mails: list[dict] = []
        with sb.state.change():
            rec = self.table.get(client_id)
            if rec is None:
                if not user["is_admin"]:
                    visibility, user_ids, notify = "me", [], False   # no sharing step for regular users
                chosen = self._check_choice(visibility or "me", list(user_ids or []))
                rec = {"client_id": client_id, "company_id": sb.company()["id"], "installed_by": user_id,
                       "visibility": visibility or "me", "user_ids": chosen, "notify": bool(notify),
                       "add_time": sb.now(), "redirect_uri": redirect_uri, "authorized": {}}
                self.table[client_id] = rec
                if notify and rec["visibility"] != "me":
                    mails = self._notify(rec, None)
            elif not self.may_use(rec, user_id):
                raise BadRequest("This app has not been shared with you", 403)
            rec["authorized"][str(user_id)] = {"scopes": scopes, "time": sb.now()}
            rec["redirect_uri"] = redirect_uri
            shared = rec["visibility"] != "me"
            url = self.callback_url(client_id)
        self._outbox(mails)
        sb.send_callback("POST", url, {"company_id": sb.company()["id"], "user_id": user_id, "isShared": shared})
        return {"client_id": client_id, "company_id": sb.company()["id"], "user_id": user_id, "scopes": scopes}

    def set_visibility(self, client_id: str, by_user: int, visibility: str, user_ids: list[int] | None = None,
                       notify: bool = False) -> dict:
        """"Manage users": only the admin who added the app may change who gets it."""
        sb = self.sb
        with sb.state.change():
            rec = self.table.get(client_id)
            if rec is None:
                raise BadRequest("The app is not installed", 404)
            if by_user != rec["installed_by"]:
                raise BadRequest("Only the admin who added the app can manage its users", 403)
            chosen = self._check_choice(visibility, list(user_ids or []))
            was_shared = rec["visibility"] != "me"
            before = set(rec["user_ids"]) if rec["visibility"] == "specific" else set()
            rec.update(visibility=visibility, user_ids=chosen, notify=bool(notify))
            mails = self._notify(rec, before) if notify and visibility != "me" else []
            url = self.callback_url(client_id)
            result = copy.deepcopy(rec)
        self._outbox(mails)
        if was_shared and visibility == "me":
            sb.send_callback("POST", url, {"company_id": rec["company_id"], "user_id": by_user, "isShared": False})
        return result

    def uninstall(self, client_id: str, user_id: int) -> bool:
        """The user's grants end, the app's webhooks of that user go, the app gets the DELETE callback."""
        sb = self.sb
        sb.tokens.revoke_where(lambda g: g.get("client_id") == client_id and g.get("user_id") == user_id)
        with sb.state.change() as data:
            for w in data["pd_webhooks"].values():
                if w["client_id"] == client_id and w["owner_id"] == user_id and not w.get("is_deleted"):
                    w.update(is_deleted=True, is_active=False, remove_time=sb.now(), remove_reason="app uninstalled")
            rec = self.table.get(client_id)
            if rec is None or str(user_id) not in rec["authorized"]:
                return False
            url = self.callback_url(client_id)
            del rec["authorized"][str(user_id)]
            if not rec["authorized"]:
                del self.table[client_id]   # nobody uses it any more: the next admin install starts afresh
        client = sb.tokens.clients[client_id]
        sb.send_callback("DELETE", url, {"client_id": client_id, "company_id": sb.company()["id"], "user_id": user_id,
                                         "timestamp": ms_time(sb.clock())}, auth=(client_id, client.client_secret))
        return True

    def callback_url(self, client_id: str) -> str | None:
        rec = self.table.get(client_id)
        return self.sb.client_options[client_id].get("callback_url") or (rec or {}).get("redirect_uri")

    # -- notification e-mails ---------------------------------------------------------------------
    def _notify(self, rec: dict, already: set[int] | None) -> list[dict]:
        sb = self.sb
        admin = sb.user(rec["installed_by"])
        app = sb.client_options[rec["client_id"]]["name"]
        targets = [u for u in sb.users() if u["id"] != admin["id"]
                   and (rec["visibility"] == "all" or u["id"] in rec["user_ids"])
                   and (already is None or u["id"] not in already)]
        return [{"to": u["email"], "to_user_id": u["id"], "subject": f"{admin['name']} added {app} for you",
                 "body": f"{admin['name']} installed {app} in {sb.company()['name']}. "
                         f"Open the apps dock in Pipedrive to authorize it.", "time": sb.now()} for u in targets]

    def _outbox(self, mails: list[dict[str, Any]]) -> None:
        if mails:
            with self.sb.state.change() as data:
                data["pd_outbox"].extend(mails)

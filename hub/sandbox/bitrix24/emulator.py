"""The Bitrix24 emulator object: portals, their CRM and tasks, app installs, event bindings.

REST methods, the sandbox page and tests all change data through these methods, so every change
fires the same events whoever made it. Records are kept as Bitrix24 returns them (CRM: UPPER keys,
string values; tasks: an internal dict rendered as tasks.task.* shows it, see tasks.py)."""
from __future__ import annotations

import copy
import hashlib
import secrets
import threading
import time
from typing import Any, Callable

from ..common import Faults, OAuthClient, SandboxState, TokenAuthority
from .crm import CrmMixin
from .events import Dispatcher
from .tasks import TasksMixin
from .util import RestError, iso

DEFAULT_SCOPES = ("crm", "task", "user", "basic")
REFRESH_TTL = 180 * 86400
EVENTS = ("ONAPPINSTALL", "ONAPPUNINSTALL", "ONCRMDEALADD", "ONCRMDEALUPDATE", "ONCRMDEALDELETE",
          "ONCRMLEADADD", "ONCRMLEADUPDATE", "ONCRMLEADDELETE", "ONCRMCONTACTADD", "ONCRMCONTACTUPDATE",
          "ONTASKADD", "ONTASKUPDATE", "ONTASKDELETE")


class Bitrix24Sandbox(CrmMixin, TasksMixin):
    def __init__(self, state: SandboxState, faults: Faults, options: dict[str, Any]):
        self.state = state
        self.faults = faults
        self.options = options
        self.clock: Callable[[], float] = options.get("clock", time.time)
        self.bucket_clock: Callable[[], float] = options.get("bucket_clock", time.monotonic)
        self.tokens = TokenAuthority(state, faults, prefix="b24", access_ttl=int(options.get("access_ttl", 3600)),
                                     code_ttl=int(options.get("code_ttl", 30)), clock=self.clock)
        faults.extend(refresh_reuse=False,          # True: an old refresh token keeps working after a refresh
                      bucket_enabled=True, bucket_burst=int(options.get("bucket_burst", 50)),
                      bucket_drain=float(options.get("bucket_drain", 2.0)),
                      operation_limit=0,            # the next N method calls answer 429 OPERATION_TIME_LIMIT
                      drop_events=0,                # the next N event deliveries are lost (never sent)
                      drop_event_rate=0.0)          # share of event deliveries lost
        self.client_options: dict[str, dict[str, Any]] = {}
        clients = options.get("clients") or [{"client_id": "relay-hub-sandbox", "client_secret": "sandbox-secret",
                                              "redirect_uris": []}]
        for c in clients:
            self.tokens.register_client(OAuthClient(c["client_id"], c["client_secret"], list(c.get("redirect_uris") or [])))
            self.client_options[c["client_id"]] = {
                "name": c.get("name", c["client_id"]),
                "scopes": list(c.get("scopes") or DEFAULT_SCOPES),
                "redirect_uri": c.get("redirect_uri") or (list(c.get("redirect_uris") or []) or [None])[0],
                "event_handler": c.get("event_handler") or _hub_handler(c, options.get("hub_url")),
                "version": str(c.get("version", "1")),
            }
        self.base_url: str | None = (options.get("base_url") or options.get("permalink_base") or "").rstrip("/") or None
        self._bucket_lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}   # portal -> (level, at)
        self.dispatcher = Dispatcher(self, auto=bool(options.get("auto_deliver", True)),
                                     timeout=float(options.get("delivery_timeout", 10.0)),
                                     session=options.get("session"))
        with state.change() as data:
            data.setdefault("bx_portals", {})
        if options.get("seed", True) and not self.data["bx_portals"]:
            from .seed import seed
            for spec in options.get("portals") or [{"name": "demo"}]:
                seed(self, **spec)

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def data(self) -> dict:
        return self.state.data

    def now(self) -> float:
        return float(int(self.clock()))

    def portals(self) -> list[dict]:
        with self.state.lock:
            return [copy.deepcopy(p["info"]) for p in self.data["bx_portals"].values()]

    def portal(self, name: str) -> dict:
        """The whole portal record (call under the state lock)."""
        p = self.data["bx_portals"].get(name)
        if p is None:
            raise RestError("PORTAL_NOT_FOUND", f"No portal {name!r} in this sandbox", 404)
        return p

    def default_portal(self) -> str:
        return next(iter(self.data["bx_portals"]))

    def portal_by_member(self, member_id: str) -> str | None:
        with self.state.lock:
            return next((n for n, p in self.data["bx_portals"].items() if p["info"]["member_id"] == member_id), None)

    def next_id(self, portal: str, kind: str, start: int = 1) -> int:
        return self.state.next_id(f"{portal}:{kind}", start)

    def add_portal(self, name: str, *, title: str | None = None, domain: str | None = None,
                   plan: str = "basic") -> dict:
        with self.state.change() as data:
            if name in data["bx_portals"]:
                raise RestError("ERROR_ARGUMENT", f"portal {name!r} exists")
            info = {"name": name, "title": title or name.title(), "domain": domain or f"{name}.bitrix24.sandbox",
                    "member_id": hashlib.md5(f"portal:{name}:{secrets.token_hex(8)}".encode()).hexdigest(),
                    "plan": plan}
            data["bx_portals"][name] = {"info": info, "users": {}, "deals": {}, "leads": {}, "contacts": {},
                                        "companies": {}, "categories": {}, "statuses": [], "tasks": {},
                                        "installs": {}, "bindings": {}, "offline": []}
            return copy.deepcopy(info)

    # -- addresses and grants ---------------------------------------------------------------------
    def learn_base_url(self, url_root: str) -> None:
        """The emulator's public root, when no option named it: the first request tells it."""
        if not self.base_url:
            self.base_url = url_root.rstrip("/")

    def portal_url(self, portal: str) -> str:
        return f"{self.base_url or 'http://bitrix24.sandbox'}/portal/{portal}"

    def endpoints(self, portal: str) -> dict[str, str]:
        base = self.base_url or "http://bitrix24.sandbox"
        return {"client_endpoint": f"{self.portal_url(portal)}/rest/", "server_endpoint": f"{base}/rest/"}

    def grant(self, portal: str, client_id: str, user_id: int) -> dict:
        with self.state.lock:
            member = self.portal(portal)["info"]["member_id"]
        return {"portal": portal, "client_id": client_id, "user_id": int(user_id), "member_id": member,
                "scopes": list(self.client_options[client_id]["scopes"])}

    def issue_tokens(self, portal: str, client_id: str, user_id: int) -> dict:
        return self.tokens.issue(client_id, self.grant(portal, client_id, user_id))

    def refresh(self, refresh_token: str | None, client_id: str) -> dict:
        """A new access AND a new refresh token every time; the old refresh token is refused from
        now on unless the `refresh_reuse` knob keeps it alive (whether Bitrix24 does is unconfirmed)."""
        from ..common import OAuthError
        keep_old = bool(self.faults.knob("refresh_reuse"))
        with self.state.change() as data:
            table = data.setdefault("oauth_refresh", {})
            entry = table.get(refresh_token or "")
            if entry is None or entry["client_id"] != client_id:
                self.tokens._count(data, "invalid_grant")
                raise OAuthError("invalid_grant", "Invalid grant")
            if self.clock() - entry.get("created_at", self.clock()) > REFRESH_TTL:
                del table[refresh_token]
                raise OAuthError("invalid_grant", "Refresh token expired")
            grant = entry["grant"]
            if grant.get("portal") not in data["bx_portals"] or \
                    client_id not in data["bx_portals"][grant["portal"]]["installs"]:
                raise OAuthError("invalid_grant", "The application is not installed")
            self.tokens._count(data, "refreshes")
            new = self.tokens._token("r")
            table[new] = dict(entry, created_at=self.clock())
            if not keep_old:
                del table[refresh_token]
        access = self.tokens._new_access(client_id, grant, new)
        return {"access_token": access, "refresh_token": new, "grant": grant}

    # -- users ------------------------------------------------------------------------------------
    def add_user(self, portal: str, name: str, last_name: str, email: str, *, admin: bool = False,
                 position: str = "") -> dict:
        with self.state.change():
            p = self.portal(portal)
            uid = self.next_id(portal, "user")
            user = {"ID": str(uid), "ACTIVE": True, "NAME": name, "LAST_NAME": last_name, "SECOND_NAME": "",
                    "EMAIL": email, "WORK_POSITION": position, "IS_ONLINE": "N", "USER_TYPE": "employee",
                    "PERSONAL_GENDER": "", "PERSONAL_PHOTO": "", "TIME_ZONE": "", "UF_DEPARTMENT": [1],
                    "ADMIN": bool(admin), "DATE_REGISTER": self._iso_now()}
            p["users"][str(uid)] = user
            if admin and not p["info"].get("admin_id"):
                p["info"]["admin_id"] = uid
            return copy.deepcopy(user)

    def users(self, portal: str) -> list[dict]:
        with self.state.lock:
            return [copy.deepcopy(u) for u in sorted(self.portal(portal)["users"].values(), key=lambda u: int(u["ID"]))]

    def user(self, portal: str, user_id: Any) -> dict | None:
        with self.state.lock:
            u = self.portal(portal)["users"].get(str(user_id))
            return copy.deepcopy(u) if u else None

    def admin_id(self, portal: str) -> int:
        with self.state.lock:
            return int(self.portal(portal)["info"]["admin_id"])

    def user_name(self, portal: str, user_id: Any) -> str:
        u = self.user(portal, user_id)
        return f"{u['NAME']} {u['LAST_NAME']}".strip() if u else ""

    def _iso_now(self) -> str:
        return iso(self.now())

    # -- app installs -----------------------------------------------------------------------------
    def install(self, portal: str, client_id: str) -> dict:
        """Install the app on the portal (the admin's Marketplace click): a per-portal
        application_token. ONAPPINSTALL goes out once the install is finished (`finish_install`)."""
        if client_id not in self.client_options:
            raise RestError("invalid_client", "Unknown application")
        with self.state.change():
            p = self.portal(portal)
            rec = p["installs"].get(client_id)
            if rec is None:
                rec = {"client_id": client_id, "application_token": secrets.token_hex(16), "installed_at": self.now(),
                       "finished": False, "status": "L", "version": self.client_options[client_id]["version"]}
                p["installs"][client_id] = rec
            return copy.deepcopy(rec)

    def installed(self, portal: str, client_id: str) -> dict | None:
        with self.state.lock:
            rec = self.portal(portal)["installs"].get(client_id)
            return copy.deepcopy(rec) if rec else None

    def application_token(self, portal: str, client_id: str) -> str | None:
        rec = self.installed(portal, client_id)
        return rec["application_token"] if rec else None

    def finish_install(self, portal: str, client_id: str, grant: dict) -> None:
        """The first token exchange stands for BX24.installFinish(): from now on the app gets
        events, and its handler hears ONAPPINSTALL (with tokens and the application_token)."""
        with self.state.change():
            rec = self.portal(portal)["installs"].get(client_id)
            if rec is None or rec["finished"]:
                return
            rec["finished"] = True
        url = self.client_options[client_id]["event_handler"]
        if url:
            data = {"VERSION": rec["version"], "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "en"}
            # queued a moment later in the running sandbox: the app stores its install first (as
            # Bitrix24's queue server delays events); deliver_pending() sends it at once
            delay = float(self.options.get("install_event_delay", 2.0 if self.dispatcher.auto else 0.0))
            self.dispatcher.queue(portal, client_id, url, "ONAPPINSTALL", data, handler_id=None,
                                  user_id=grant["user_id"], with_refresh=True, delay=delay)

    def uninstall(self, portal: str, client_id: str, clean: bool = False) -> bool:
        """The admin removes the app: grants end, bindings go, ONAPPUNINSTALL carries only the
        portal's identity and the application_token (its only proof)."""
        with self.state.change():
            p = self.portal(portal)
            rec = p["installs"].pop(client_id, None)
            if rec is None:
                return False
            bound = [b for b in p["bindings"].values() if b["client_id"] == client_id and b["event"] == "ONAPPUNINSTALL"]
            for key in [k for k, b in p["bindings"].items() if b["client_id"] == client_id]:
                del p["bindings"][key]
            p["offline"] = [e for e in p["offline"] if e["client_id"] != client_id]
        self.tokens.revoke_where(lambda g: g.get("portal") == portal and g.get("client_id") == client_id)
        urls = [b["handler"] for b in bound if b["event_type"] == "online"]
        own = self.client_options[client_id]["event_handler"]
        if own and own not in urls:
            urls.append(own)
        for url in urls:
            self.dispatcher.queue(portal, client_id, url, "ONAPPUNINSTALL", {"LANGUAGE_ID": "en", "CLEAN": int(clean)},
                                  handler_id=None, user_id=None, token_override=rec["application_token"],
                                  tokens=False)
        return True

    # -- event bindings ---------------------------------------------------------------------------
    def bind(self, portal: str, client_id: str, event: str, handler: str, *, auth_type: int = 0,
             event_type: str = "online") -> dict:
        event = (event or "").upper()
        if event not in EVENTS:
            raise RestError("ERROR_EVENT_NOT_FOUND", "Event not found", 400)
        if event_type not in ("online", "offline"):
            raise RestError("ERROR_ARGUMENT", "event_type: online or offline", 400)
        if event_type == "online" and not (handler or "").startswith(("http://", "https://")):
            raise RestError("ERROR_ARGUMENT", "handler: Handler URL is required and must be absolute", 400)
        with self.state.change():
            p = self.portal(portal)
            for b in p["bindings"].values():
                if (b["client_id"], b["event"], b["handler"], b["auth_type"], b["event_type"]) == \
                        (client_id, event, handler or "", auth_type, event_type):
                    raise RestError("ERROR_CORE", "Handler already binded", 400)
            hid = self.next_id(portal, "handler", 100)
            b = {"id": hid, "client_id": client_id, "event": event, "handler": handler or "", "auth_type": auth_type,
                 "event_type": event_type, "created": self.now()}
            p["bindings"][str(hid)] = b
            return copy.deepcopy(b)

    def unbind(self, portal: str, client_id: str, event: str, handler: str | None, auth_type: int | None = None,
               event_type: str = "online") -> int:
        event = (event or "").upper()
        with self.state.change():
            p = self.portal(portal)
            gone = [k for k, b in p["bindings"].items() if b["client_id"] == client_id and b["event"] == event
                    and b["event_type"] == event_type and (handler is None or b["handler"] == handler)
                    and (auth_type is None or b["auth_type"] == auth_type)]
            for k in gone:
                del p["bindings"][k]
            return len(gone)

    def bindings(self, portal: str, client_id: str | None = None) -> list[dict]:
        with self.state.lock:
            return [copy.deepcopy(b) for b in sorted(self.portal(portal)["bindings"].values(), key=lambda b: b["id"])
                    if client_id is None or b["client_id"] == client_id]

    def emit(self, portal: str, event: str, data: dict, *, user_id: int | None, automation: bool = False,
             object_id: str | None = None) -> None:
        """Queue `event` for every app bound to it on the portal whose install is finished. The
        auth carries a token of the user who made the change (none for automation rules)."""
        with self.state.change():
            p = self.portal(portal)
            user_id = user_id or int(p["info"]["admin_id"])
            targets = [copy.deepcopy(b) for b in sorted(p["bindings"].values(), key=lambda b: b["id"])
                       if b["event"] == event and p["installs"].get(b["client_id"], {}).get("finished")]
            for b in targets:
                if b["event_type"] == "offline":
                    self._offline_add(p, b, event, data, object_id, user_id)
        for b in targets:
            if b["event_type"] == "online":
                self.dispatcher.queue(portal, b["client_id"], b["handler"], event, data, handler_id=b["id"],
                                      user_id=(b["auth_type"] or user_id), tokens=not automation)

    def _offline_add(self, p: dict, binding: dict, event: str, data: dict, object_id: str | None,
                     user_id: int | None) -> None:
        """One record per object and event (latest change only), as Bitrix24's offline queue keeps."""
        key = (binding["client_id"], event, object_id)
        for rec in p["offline"]:
            if (rec["client_id"], rec["EVENT_NAME"], rec["_object"]) == key and object_id is not None:
                rec.update(TIMESTAMP_X=self._iso_now(), EVENT_DATA=copy.deepcopy(data))
                return
        p["offline"].append({"ID": str(self.next_id(p["info"]["name"], "offline")), "client_id": binding["client_id"],
                             "_object": object_id, "TIMESTAMP_X": self._iso_now(), "EVENT_NAME": event,
                             "EVENT_DATA": copy.deepcopy(data), "EVENT_ADDITIONAL": {"user_id": str(user_id or 0)},
                             "MESSAGE_ID": secrets.token_hex(16), "PROCESS_ID": None})

    def offline_get(self, portal: str, client_id: str, *, clear: bool = True, limit: int = 50,
                    process_id: str | None = None) -> dict:
        with self.state.change():
            p = self.portal(portal)
            mine = [e for e in p["offline"] if e["client_id"] == client_id and e["PROCESS_ID"] is None][:limit]
            pid = process_id or secrets.token_hex(16)
            if clear:
                ids = {id(e) for e in mine}
                p["offline"] = [e for e in p["offline"] if id(e) not in ids]
            else:
                for e in mine:
                    e["PROCESS_ID"] = pid
            events = [{k: v for k, v in e.items() if k not in ("client_id", "_object")} for e in mine]
            return {"process_id": pid if not clear else None, "events": copy.deepcopy(events)}

    def offline_clear(self, portal: str, client_id: str, process_id: str, ids: list | None = None) -> bool:
        with self.state.change():
            p = self.portal(portal)
            p["offline"] = [e for e in p["offline"] if not (
                e["client_id"] == client_id and e["PROCESS_ID"] == process_id and (not ids or e["ID"] in ids
                                                                                  or e["MESSAGE_ID"] in ids))]
            return True

    # -- deliveries (tests) -----------------------------------------------------------------------
    @property
    def deliveries(self) -> list[dict]:
        return self.dispatcher.log

    def deliver_pending(self) -> list[dict]:
        """Send every queued event delivery now, in this thread; returns their log entries."""
        return self.dispatcher.deliver_pending()

    def pending(self) -> list[dict]:
        return self.dispatcher.pending()

    # -- leaky bucket -----------------------------------------------------------------------------
    def bucket_hit(self, portal: str) -> bool:
        """Count one request against the portal's bucket; False: over the limit (503)."""
        if not self.faults.knob("bucket_enabled"):
            return True
        burst, drain = self.faults.knob("bucket_burst"), self.faults.knob("bucket_drain")
        with self._bucket_lock:
            now = self.bucket_clock()
            level, at = self._buckets.get(portal, (0.0, now))
            level = max(0.0, level - (now - at) * drain)
            if level + 1 > burst:
                self._buckets[portal] = (level, now)
                return False
            self._buckets[portal] = (level + 1, now)
            return True

    def bucket_level(self, portal: str) -> float:
        with self._bucket_lock:
            level, at = self._buckets.get(portal, (0.0, self.bucket_clock()))
            return max(0.0, level - (self.bucket_clock() - at) * self.faults.knob("bucket_drain"))

    def reset_bucket(self, portal: str | None = None) -> None:
        with self._bucket_lock:
            if portal is None:
                self._buckets.clear()
            else:
                self._buckets.pop(portal, None)


def _hub_handler(client: dict, hub_url: str | None) -> str | None:
    """The app's event handler setting. Default for the embedded hub: its app-wide webhook URL
    (`<hub>/hooks/bitrix24`), else derived from the OAuth callback `<hub>/oauth/<provider>/callback`."""
    if hub_url:
        return f"{hub_url.rstrip('/')}/hooks/bitrix24"
    for uri in client.get("redirect_uris") or []:
        head, sep, tail = uri.rpartition("/oauth/")
        if sep and tail.endswith("/callback"):
            return f"{head}/hooks/{tail[: -len('/callback')]}"
    return None

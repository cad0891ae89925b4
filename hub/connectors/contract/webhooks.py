"""The `Webhooks` part of a CRM connector: everything the core needs to take deliveries in and turn
them into neutral `CrmEvent`s, without knowing whose they are.

    POST /hooks/<connector>/<token>   routing "token": the URL names the installation
    POST /hooks/<connector>           routing "account": one app-wide URL; `account_key(raw)` names the
                                      account (HubSpot's portalId, Bitrix24's member_id), which is the
                                      installation's `company_id`

The core answers every request from its own database: it routes, lets `handshake` answer requests
that must be answered specially (and stores nothing), lets `verify` refuse what does not prove its
origin, lets `split` cut the body into deliveries (a JSON array, a form body), stores each as its own
inbox row and job in one transaction, and answers 2xx only after the commit. A worker later calls
`normalize(delivery, client)`; the client is made only if the connector touches it (a delivery that
carries only an id). `poll` and `changes` let the reconciliation runner catch what a lost delivery
missed: the API gives states, the hub holds the last known state, the connector compares them.
A delivery that carries only an id may also normalize to a `Snapshot` (the object read now): the
core compares it with the known state through `changes`, exactly as reconciliation does, so a
webhook and a later poll of one transition find it once.

Providers that sign nothing but hand the app a token per account (Bitrix24's `application_token`)
use `claim`: a delivery that carries the token with an access token proving it comes from the
account; the core checks that access token against the account's API and keeps the token
(`Secrets.token`) for `verify`. `ends_installation` names a delivery that says the app was removed
from the account: once verified, the core ends the installation.

A connector raises `MalformedPayload` (a ValueError naming the field) for a body that is not one of
its deliveries: the core answers 400 naming the field, or marks a stored delivery failed."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qsl

# The neutral event kinds rules and sync understand; a connector emits a subset (`Webhooks.kinds`).
KINDS: frozenset[str] = frozenset({
    "deal.created", "deal.updated", "deal.won", "deal.lost", "deal.stage_changed", "deal.deleted",
    "lead.added", "lead.stage_changed", "lead.disqualified", "lead.converted", "lead.closed",
    "person.created", "person.updated", "person.deleted",
    "person.lifecycle_changed",  # a contact's lifecycle stage (HubSpot's lifecyclestage) moved
    "activity.logged",           # an e-mail, call, meeting, message logged on a record (outreach or
                                 # response: `extra["direction"]`, `extra["activity"]`, `extra["outcome"]`)
    "task.created", "task.status_changed",
    "task.completed",            # a CRM's own task / activity marked done
    # task events: object_type "task"; `extra["status"]` one of targets.TASK_STATUSES; when known,
    # `extra["deadline"]` (ISO date or UTC datetime), `extra["responsible"]`, `extra["detail"]`, and
    # `extra["deal_id"]` / `extra["lead_id"]` for the record it belongs to
})
ROUTINGS = frozenset({"token", "account"})
_ONCE = ("created", "added", "deleted")   # what happens to an object at most once


class MalformedPayload(ValueError):
    """A delivery that is not what the provider sends; `field` is where (a dotted path, or `body`).
    The ingest answers 400 naming it; found while normalizing, the stored delivery fails visibly."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class Refused(Exception):
    """`verify`'s answer to a request that does not prove where it comes from: 401, nothing stored.
    The message names what is wrong (`Authorization: ...`), never a secret."""

    def __init__(self, message: str = "Authorization: bad or missing credentials"):
        super().__init__(message)


@dataclass
class CrmEvent:
    """A provider-neutral CRM event, as rules and sync see it."""

    kind: str                      # one of KINDS
    object_type: str               # deal | lead | person | task
    object_id: str
    event_id: str                  # the provider's id of this event (dedupe key)
    occurred_at: datetime | None
    current: dict[str, Any] | None
    previous: dict[str, Any] | None
    pipeline_id: str | None = None
    from_stage_id: str | None = None
    to_stage_id: str | None = None
    version: str | None = None     # orders states of one object (e.g. its update time); later wins
    extra: dict[str, Any] = field(default_factory=dict)
    # What makes two deliveries the same occurrence ("won at T", "to stage 3 at T"): a webhook, its
    # retries and the reconciliation poll all carry the same marker. None: `default_occurrence`.
    occurrence: str | None = None
    # The fields of the object's state this transition leaves behind ({"status": "won", "won_time": T});
    # a newer state that contradicts one of them supersedes a late delivery of it. {}: a creation
    # (a newer state only confirms it). None: no transition of its own (updates, deletions).
    shows: dict[str, Any] | None = None


def canonical_time(value: Any) -> str:
    """One spelling per instant, whatever the source wrote (Z, +00:00, milliseconds, space); any
    other value as its text. Versions and occurrence markers compare in this form."""
    if value in (None, ""):
        return ""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip().replace(" ", "T")
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat()


def default_occurrence(event: CrmEvent) -> str:
    """The marker of an event whose connector set none: a creation or deletion happens once per
    object; anything else is told apart by the object's version (or, lacking one, the event id)."""
    if event.kind.rsplit(".", 1)[-1] in _ONCE:
        return "once"
    return canonical_time(event.version) if event.version else event.event_id


@dataclass
class RawRequest:
    """A request as the provider made it, for routing, handshakes, verification and splitting.
    `url` is the full URL the provider called (the hub's public base URL, path and query), as
    signature schemes sign it; `headers` keys are lower-case."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    content_type: str = ""
    # when it arrived, epoch seconds by the hub's clock (a scheme that refuses stale signature
    # timestamps compares with it); None: now
    received_at: float | None = None
    _json: Any = field(default=None, repr=False, compare=False)
    _parsed: bool = field(default=False, repr=False, compare=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body's JSON value; a ValueError naming the field when it is not storable JSON
        (wrong encoding, too deep, numbers beyond 64 bits, NUL, lone surrogates)."""
        if not self._parsed:
            from ...inputs import parse_json
            self._json, self._parsed = parse_json(self.body), True
        return self._json

    @property
    def form(self) -> dict[str, str]:
        """A form-encoded body (`application/x-www-form-urlencoded`), first value per key."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPayload("body", f"form body is not UTF-8 (byte {exc.start})") from None
        out: dict[str, str] = {}
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=2000,
                              errors="strict")
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayload("body", f"not a form body ({exc})"[:300]) from None
        from ...inputs import check_text
        for key, value in pairs:
            check_text(key, "(key)")
            check_text(value, key)
            out.setdefault(key, value)
        return out


@dataclass(frozen=True)
class Secrets:
    """What `verify` may check a request against. `user`/`password`: the HTTP Basic credentials the
    hub registered the installation's webhooks with (made once, kept encrypted); `app_secret()`: the
    app's client secret (signature schemes), read only when asked for."""

    user: str = ""
    password: str = ""
    token: str = ""               # the token a `claim` handed over for this installation ("" : none yet)
    app_secret_source: Callable[[], str] = field(default=lambda: "", repr=False, compare=False)

    def app_secret(self) -> str:
        return self.app_secret_source() or ""


@dataclass(frozen=True)
class TokenClaim:
    """A delivery's offer of the installation's delivery token (`Secrets.token`). `proof` is a
    token response as the delivery gives it (`access_token`, ...): the core asks the connector's
    identity hook, with a client at the installation's known API root and that access token, whose
    account it is. It keeps the token when nothing is kept yet, or when `replaces` (a reinstall
    hands over a new one)."""

    token: str
    proof: dict[str, Any] = field(default_factory=dict, repr=False)
    replaces: bool = False


@dataclass(frozen=True)
class Delivery:
    """One event of a request, stored as its own inbox row. `key`: the provider's id of the event,
    shared by its retries (dedupe, at most 200 characters); `body`: the text stored and handed back
    to `normalize`; `ordering`: the object it concerns (`deal:42`), so one object's deliveries are
    processed one after the other. `account`: routing "account", the account this event belongs to
    when one request carries several accounts' events (HubSpot's portalId per event); "" = the
    request's (`account_key`)."""

    key: str
    body: str
    ordering: str = ""
    account: str = ""

    @classmethod
    def of_json(cls, value: Any, key: str, ordering: str = "", account: str = "") -> Delivery:
        """A part of a JSON body (an element of an array), stored as its own JSON text."""
        return cls(key, json.dumps(value, ensure_ascii=False, separators=(",", ":")), ordering, account)

    def json(self) -> Any:
        from ...inputs import parse_json
        return parse_json(self.body)


@dataclass(frozen=True)
class Reply:
    """The answer to a handshake (an activation ping, a challenge to echo); nothing is stored."""

    status: int = 200
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "text/plain"


@dataclass(frozen=True)
class Credentials:
    """What the hub asks the provider to send with each delivery (HTTP Basic)."""

    user: str
    password: str


@dataclass(frozen=True)
class Subscription:
    """One thing the hub subscribes to, in the provider's words (`change` of `deal`, `*` of `person`)."""

    action: str
    object: str


@dataclass(frozen=True)
class Hook:
    """A subscription as it exists at the provider."""

    remote_id: str
    action: str
    object: str


@dataclass
class Subscribed:
    """What `subscribe` did: hooks kept as they were, hooks created, stale ones of ours deleted."""

    kept: list[Hook] = field(default_factory=list)
    created: list[Hook] = field(default_factory=list)
    deleted: int = 0

    @property
    def hooks(self) -> list[Hook]:
        return self.kept + self.created


@dataclass(frozen=True)
class Snapshot:
    """An object as the provider's API shows it now (reconciliation): `version` orders its states,
    `data` becomes the hub's known state."""

    object_type: str
    object_id: str
    version: str | None
    deleted: bool
    data: dict[str, Any]


@dataclass(frozen=True)
class Webhooks:
    """A connector's webhooks. Required: how deliveries are verified, split and normalized."""

    verify: Callable[[RawRequest, Secrets], None]              # raise Refused
    # raise MalformedPayload for a body that is no delivery at all; an array element that is not an
    # event may instead be returned IN the list as its MalformedPayload (its field names the index,
    # `[3].portalId`): the other elements are stored, the answer names the refused ones
    split: Callable[[RawRequest], list[Delivery | MalformedPayload]]
    normalize: Callable[[Delivery, Any], list[CrmEvent | Snapshot]]   # (delivery, lazy client or None)
    kinds: frozenset[str] = frozenset()                        # the KINDS it emits
    routing: str = "token"                                     # token | account
    account_key: Callable[[RawRequest], str | None] | None = None   # routing "account"
    handshake: Callable[[RawRequest], Reply | None] | None = None
    subscriptions: tuple[Subscription, ...] = ()
    # (client, url, credentials, ours) -> Subscribed: make the provider's hooks match `subscriptions`
    # for `url`, idempotently; `ours` is the URL prefix of every hub hook of this connector (a hook
    # under it that is not wanted, or points at an old URL, is deleted)
    subscribe: Callable[[Any, str, Credentials, str], Subscribed] | None = None
    unsubscribe: Callable[[Any, str], None] | None = None      # (client, remote_id)
    poll: Callable[[Any, datetime | None], Iterable[Snapshot]] | None = None   # (client, changed since)
    changes: Callable[[dict[str, Any] | None, Snapshot], list[CrmEvent]] | None = None  # (known, now)
    # For a provider with no API for subscriptions (`subscribe` None): what an admin does by hand at
    # the provider; the settings page shows it to admins with the endpoint URL and the secret to use
    # (the installation's webhook password, which `verify` gets as `Secrets.password`).
    manual_setup: str = ""
    claim: Callable[[RawRequest], TokenClaim | None] | None = None      # see TokenClaim
    ends_installation: Callable[[RawRequest], bool] | None = None       # the app was removed (verified first)

    def __post_init__(self):
        if self.routing not in ROUTINGS:
            raise ValueError(f"webhooks: routing must be one of {sorted(ROUTINGS)}")
        if self.routing == "account" and self.account_key is None:
            raise ValueError("webhooks: routing 'account' needs account_key")
        unknown = set(self.kinds) - KINDS
        if unknown:
            raise ValueError(f"webhooks: unknown event kinds {sorted(unknown)}")
        if (self.poll is None) != (self.changes is None):
            raise ValueError("webhooks: poll and changes come together")

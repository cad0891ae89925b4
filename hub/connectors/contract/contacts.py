"""The two sides of the contact sync: a `ContactSource` (a CRM's persons) and a `ContactStore` (an
address book whose labels hold contacts). The sync (hub/sync) sees only `Contact`s and these two
protocols; a connector with role `contact_source` or `contact_store` sets `Connector.contacts` to
the class implementing it, made per run for one connection: `cls(ContactsContext(...))`.

What the sync relies on, and why:
- Values are plain and normalised by the connector: e-mails and phones as `{"value", "label",
  "primary"}` with neutral labels (work, home, mobile, main, fax, pager, other), organization and
  title as names, custom fields by the side's own key as text. The sync compares them field by field
  with what it last wrote (a 3-way merge), so a connector must read back what it wrote unchanged.
- `updated` is when the contact last changed (ISO 8601, any spelling: the sync compares instants);
  it decides "newest wins" and, on a source, is also its change cursor.
- A store writes in batches within its own `limits`; the sync checkpoints after each batch. A create
  whose answer was lost raises `WriteOutcomeUnknown`: the next attempt finds the contacts by the
  `marker` (the source id) every written contact carries, instead of creating them twice.
- Deletions are explicit: a store lists tombstones (`deleted`) among its changes; a source's
  deletions reach the sync as `person.deleted` events (hub/events), never as absence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection, Iterator, Mapping, Protocol, Sequence

from hub.errors import Fatal, Retriable

# The standard fields of a source person, as a field mapping names them; any other key in a mapping
# is one of the source's custom fields (its `field_catalog()` lists them).
NAME, EMAILS, PHONES, ORGANIZATION = "name", "emails", "phones", "org_name"
SOURCE_STANDARD = (NAME, EMAILS, PHONES, ORGANIZATION)

# The fields of a stored contact a mapping may write (`custom:<key>`: a custom field of the store).
STORE_FIELDS = ("name", "emails", "phones", "organization", "title", "notes")
CUSTOM_PREFIX = "custom:"

ContactValue = dict[str, Any]   # {"value": str, "label": str, "primary": bool}


@dataclass
class Contact:
    """One person or contact in neutral words, as either side reads or is asked to write it."""

    id: str | None = None            # the side's id (None: not created yet)
    given_name: str = ""
    family_name: str = ""
    name: str = ""                   # the whole name, when the side has no given/family split
    emails: list[ContactValue] = field(default_factory=list)
    phones: list[ContactValue] = field(default_factory=list)
    organization: str = ""           # by name
    title: str = ""                  # job title
    addresses: list[dict[str, str]] = field(default_factory=list)  # {"street", "city", "region", "postal_code", "country", "label"}
    notes: str = ""
    custom: dict[str, str] = field(default_factory=dict)            # custom fields by the side's key, as text
    updated: str = ""                # when it last changed (ISO 8601)
    etag: str = ""                   # the side's version token, sent back with an update (conflict check)
    deleted: bool = False            # a tombstone: deleted on that side
    marker: str | None = None        # store: the source id the sync stamped on it
    groups: tuple[str, ...] = ()     # store: the labels it is in
    previous_ids: tuple[str, ...] = ()   # store: ids it had before (the sync moves its links)
    raw: dict[str, Any] = field(default_factory=dict)               # the side's own record, as read


@dataclass(frozen=True)
class ContactsContext:
    """What the core hands a contacts connector: the connection's API base and token source, or an
    API client to use instead (tests, a client shared with other work)."""

    api_base: str
    tokens: Any = None               # hub.connectors.base.TokenSource
    client: Any = None


@dataclass(frozen=True)
class FieldInfo:
    """A source field for the mapping UI."""

    key: str                         # what a mapping stores: a standard name or the CRM's own key
    label: str
    type: str = ""
    custom: bool = False


@dataclass
class SourcePage:
    """A page of a source's changes; `cursor` resumes after it (pass it to `changes` next time)."""

    contacts: list[Contact]
    cursor: str | None


@dataclass
class ChangesPage:
    """A page of a store's listing: the changes since a token, or every contact (a full listing)."""

    contacts: list[Contact]
    incremental: bool                # changes since a token (tombstones appear) or the whole account
    first: bool
    last: bool
    total: int | None = None         # a full listing: contacts in the whole account (None: not said)
    next_token: str | None = None    # the last page: what to pass next time


@dataclass(frozen=True)
class Group:
    """A label of the store (user labels only: system groups cannot hold a sync)."""

    id: str
    name: str
    members: int = 0
    ours: bool = False               # made by the hub (a retried create may adopt it)


@dataclass(frozen=True)
class StoreLimits:
    """Per-call limits of the store's batch operations; the sync checkpoints after each call."""

    get: int = 100
    create: int = 100
    update: int = 100
    delete: int = 100
    members: int = 100
    page: int = 100


# -- outcomes a store reports ---------------------------------------------------------------------
class ChangesExpired(Fatal):
    """The change token is no longer valid: list everything (deletions are then not inferred)."""


class StoreFull(Fatal):
    """The account can take no more contacts; the persons not added are left out with the reason."""


class GroupNameTaken(Fatal):
    """The account already has a label of that name."""


class BatchRefused(Fatal):
    """Part of a batch was refused for per-contact reasons; the rest was written. `refused` holds
    the refused entries: positions in the batch (create) or contact ids (update)."""

    def __init__(self, message: str, refused: Collection[Any], reason: str = "", status: int | None = None):
        super().__init__(message, status)
        self.refused = set(refused)
        self.reason = reason or message


class VersionConflict(Fatal):
    """An update met contacts changed since they were read (`ids`): read them again, merge, resend."""

    def __init__(self, message: str, ids: Sequence[str], status: int | None = None):
        super().__init__(message, status)
        self.ids = list(ids)


class WriteOutcomeUnknown(Retriable):
    """A create failed in a way that may have happened after the contacts were made: the next attempt
    looks them up by marker (`ContactStore.find`) before creating them again."""


# -- the two sides --------------------------------------------------------------------------------
class ContactSource(Protocol):
    """A CRM's persons. `fields` are the source fields a mapping uses (`NAME` ... or custom keys):
    a source resolves only what is asked (e.g. organization names cost calls)."""

    page_size: int
    filters: tuple[str, ...]         # the filter keys `changes` takes (e.g. owner_id, org_id), ids

    def changes(self, cursor: str | None, *, fields: Collection[str],
                filters: Mapping[str, Any]) -> Iterator[SourcePage]:
        """Persons changed at or after `cursor` (None: all), oldest change first, a page at a time.
        Reading the boundary again is harmless: unchanged persons compare equal."""

    def get(self, contact_id: str, *, fields: Collection[str]) -> Contact | None:
        """One person (deleted ones flagged); None when it does not exist."""

    def create(self, contact: Contact, *, fields: Collection[str]) -> Contact:
        """Create a person from the mapped `fields` of `contact`; the person as stored."""

    def update(self, contact_id: str, contact: Contact, *, fields: Collection[str]) -> Contact | None:
        """Write the mapped `fields`; the person as stored, None when it no longer exists."""

    def delete(self, contact_id: str) -> bool:
        """False when it was gone already."""

    def field_catalog(self) -> list[FieldInfo]:
        """The person fields a mapping may use (standard and custom)."""

    @staticmethod
    def contact_of(raw: Mapping[str, Any]) -> Contact:
        """The neutral person of a raw record (an event's payload), without any call."""


class ContactStore(Protocol):
    """An address book of one account. `fields` are the store fields a mapping writes (STORE_FIELDS
    and `custom:<key>`): reads include them, updates replace only them and keep everything else."""

    limits: StoreLimits

    def groups(self) -> list[Group]:
        """The account's own labels."""

    def group(self, group_id: str) -> Group | None:
        """One label; None when it is no user label of the account (gone, or a system group)."""

    def create_group(self, name: str, *, adopt_existing: bool = True) -> Group:
        """Create a label the hub marks as its own. Taken names: adopt the existing label, or raise
        `GroupNameTaken` with `adopt_existing=False`."""

    def changes(self, token: str | None, *, fields: Collection[str]) -> Iterator[ChangesPage]:
        """Changes since `token`, or every contact when it is None; raises `ChangesExpired`."""

    def count(self) -> int:
        """Contacts in the whole account (what an account cap counts)."""

    def get(self, ids: Sequence[str], *, fields: Collection[str]) -> dict[str, Contact | None]:
        """Contacts by id, keyed by the id asked for (the answer may carry a newer id); None: gone."""

    def find(self, markers: Collection[str], *, fields: Collection[str]) -> dict[str, Contact]:
        """Contacts carrying these markers, by marker (a full listing: only to reconcile)."""

    def create(self, contacts: Sequence[Contact], *, fields: Collection[str], group: str) -> list[Contact]:
        """Create at most `limits.create` contacts in `group`, each stamped with its `marker`; the
        created contacts in input order. Raises StoreFull, BatchRefused, WriteOutcomeUnknown."""

    def update(self, contacts: Mapping[str, Contact], current: Mapping[str, Contact], *,
               fields: Collection[str]) -> dict[str, Contact]:
        """Replace the mapped `fields` of at most `limits.update` contacts (id -> new values), each
        sent with its `current` version; {id asked for: the contact as written}. Raises
        VersionConflict (ids changed since read) or BatchRefused."""

    def delete(self, ids: Sequence[str]) -> None:
        """Delete contacts; ones already gone are no error."""

    def add_members(self, group: str, ids: Sequence[str]) -> None: ...

    def remove_members(self, group: str, ids: Sequence[str]) -> None: ...

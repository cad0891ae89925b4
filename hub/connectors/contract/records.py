"""The CRM side of a rule: one neutral record per CRM object, and the dropdown loaders.

A `CrmSource` is made per run (or per page view) for one connection: `source(ctx)` where `ctx` is a
`SourceContext`. Rules, templates and previews see only `SourceRecord`; each connector decides how
to read its objects (and whether a toggle such as "carry notes" costs an extra call)."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator, Protocol


@dataclass(frozen=True)
class Carry:
    """What a step asks the source to read beyond the object itself."""

    contacts: bool = False
    notes: bool = False
    attachments: bool = False


@dataclass
class SourceRecord:
    """A CRM object (deal, lead, person, organization, task ...) in neutral terms."""

    kind: str                              # neutral object type: deal | lead | person | ...
    id: str
    data: dict[str, Any]                   # the provider's fields as read (templates may name them)
    url: str = ""                          # where a person opens it in the CRM
    title: str = ""
    status: str | None = None              # open | won | lost | converted | ... (neutral)
    amount: str | None = None              # formatted money ("1,200.00 EUR"), None when unknown
    pipeline: str | None = None            # names, not ids
    stage: str | None = None
    owner: str | None = None
    person: dict[str, Any] | None = None   # name, email, phone ... of the linked person
    org: dict[str, Any] | None = None      # name, address ... of the linked organization
    notes: list[dict[str, Any]] = field(default_factory=list)   # {"content": html or text, "pinned": bool}
    files: list[dict[str, Any]] = field(default_factory=list)   # {"id", "name", "size", "mime"}
    fields: dict[str, Any] = field(default_factory=dict)        # custom fields by their label
    raw: dict[str, Any] = field(default_factory=dict)           # the object exactly as the API gave it


@dataclass(frozen=True)
class SourceContext:
    """What the core hands a connector's source: an API client made for the connection, its API base,
    a cache for names (catalogs) and a place for warnings that should reach the run log."""

    client: Any
    api_base: str
    catalog: Callable[[str], Any]          # catalog name -> its loaded value (through the core's cache)
    settings: dict[str, Any] = field(default_factory=dict)


class CrmSource(Protocol):
    def load(self, kind: str, object_id: str, current: dict | None, carry: Carry,
             warnings: list[str]) -> SourceRecord:
        """The record; `current` is the object as the event saw it (None: read it now)."""

    def recent(self, kind: str, limit: int = 20) -> list[SourceRecord]:
        """Recently updated objects of `kind` (the preview's record picker)."""

    # Optional: `search(kind, query) -> list[SourceRecord]`, objects of `kind` whose title holds
    # `query` (the hub's "apply a template set" picker). Without it the core filters `recent(kind)`.

    def file_chunks(self, file: dict[str, Any]) -> Iterator[bytes]:
        """A file's bytes, streamed (attachments copied to a target). The download starts when this
        is called, so a missing file fails before any upload begins."""

    def fields(self, kind: str) -> list["FieldInfo"]:
        """The fields templates and conditions may name for `kind` (custom ones included)."""

    def value(self, kind: str, data: dict[str, Any], key: str) -> Any:
        """What a condition compares: field `key` (a `FieldInfo.key`) of an object as an event or a
        read gave it (`SourceRecord.data`), whatever shape the provider used: option ids for enum
        (a list for set), a plain number for money, None when empty. Makes no API call (conditions
        are checked while the event is recorded)."""


@dataclass(frozen=True)
class FieldInfo:
    key: str                               # what a template or condition names (`deal.value`)
    label: str
    type: str = "text"                     # text | number | money | date | enum | set | user | bool
    options: tuple[tuple[str, str], ...] = ()   # (value, label) for enum and set
    custom: bool = False                   # a field the company defined (key is then provider-made)


@dataclass(frozen=True)
class Catalog:
    """A named dropdown loader (pipelines, stages, users, projects ...). The core caches its value
    per connection for `rules.catalog_seconds`; `load(client)` returns JSON-able data."""

    name: str
    label: str
    load: Callable[[Any], Any]


# How the hub writes numbers and money wherever a person reads them (SourceRecord.amount, templates):
# one spelling for every connector.
def format_number(value: Any) -> str:
    """18400 -> "18,400"; 18400.5 -> "18,400.50"; anything else as text."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not number.is_finite():
        return str(value)
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number:,.2f}"


def format_money(amount: Any, currency: str | None) -> str | None:
    if amount in (None, ""):
        return None
    return f"{format_number(amount)} {currency}".strip() if currency else format_number(amount)

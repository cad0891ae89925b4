"""From a CRM record to what lands in the target: the template context, the automatic details
block (the data the step carries), and neutral rich text.

Data flow: the step's data toggles decide what is fetched and offered (`Carry`); the admin's name
and description templates decide the wording; the details block lists the carried data (value,
contacts, mapped fields, pinned notes) after the description, so switching a toggle on is enough
to see its data in the target. Everything user-supplied is escaped by the template's autoescape or
here, and the result is cut down to neutral rich text (`richtext.clean_html`), which each target
converts to its own format.

Templates see the record neutrally: the object under its kind (`deal.title`, `lead.title`,
`person.name` ...) and as `record`, with title, status, value, pipeline, stage, owner, url and the
CRM's own fields by their keys."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from ..connectors.contract.records import SourceRecord
from .fields import Mapping, alias, format_money, mapped_values
from . import pool
from .pool import Job
from .render import Limits, TemplateProblem
from .richtext import clean_html

NAME_MAX = 500
OBJECT_KINDS = ("deal", "lead", "person", "org", "organization", "contact", "company", "task", "ticket")
KNOWN_NAMES = OBJECT_KINDS + ("record", "notes", "files", "fields", "event", "rule")


@dataclass
class Carry:
    """The data toggles of a step. The title is always carried and has no toggle."""

    value: bool = True
    contacts: bool = True
    notes: bool = False
    attachments: bool = False

    @classmethod
    def from_dict(cls, data: dict | None) -> "Carry":
        data = data or {}
        return cls(**{k: bool(data.get(k, getattr(cls, k))) for k in ("value", "contacts", "notes", "attachments")})

    def as_dict(self) -> dict[str, bool]:
        return {"value": self.value, "contacts": self.contacts, "notes": self.notes, "attachments": self.attachments}

    def __or__(self, other: "Carry") -> "Carry":
        return Carry(self.value or other.value, self.contacts or other.contacts, self.notes or other.notes,
                     self.attachments or other.attachments)


def title_of(record: SourceRecord) -> str:
    return str(record.title or record.data.get("title") or record.data.get("name") or "")


def money_of(record: SourceRecord) -> str | None:
    """The connector's formatted amount, or one made from a `value` (and `currency`) it left as data."""
    if record.amount:
        return record.amount
    data = record.data
    if isinstance(data.get("value"), dict):
        return format_money(data["value"].get("amount"), data["value"].get("currency"))
    return format_money(data.get("value"), data.get("currency"))


def file_name(f: dict[str, Any]) -> str:
    return str(f.get("name") or f.get("file_name") or f"file-{f.get('id')}")


def file_size(f: dict[str, Any]) -> int | None:
    size = f.get("size", f.get("file_size"))
    return size if isinstance(size, int) and not isinstance(size, bool) else None


@dataclass
class Rendered:
    name: str
    html_notes: str
    warnings: list[str] = field(default_factory=list)


def _primary(items: Any) -> str | None:
    if not isinstance(items, list):
        return items or None
    chosen = next((i for i in items if isinstance(i, dict) and i.get("primary")), None) or (items[0] if items else None)
    return (chosen.get("value") if isinstance(chosen, dict) else chosen) or None


def _values(items: Any) -> list[str]:
    if not isinstance(items, list):
        return [items] if items else []
    return [str(i.get("value") if isinstance(i, dict) else i) for i in items if i]


def _address(org: dict) -> str | None:
    address = org.get("address")
    if isinstance(address, dict):
        return address.get("formatted_address") or address.get("value")
    return address or None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def template_context(record: SourceRecord, carry: Carry, mappings: list[Mapping], *,
                     event: dict[str, Any] | None = None, rule_name: str = "") -> dict[str, Any]:
    d = record.data
    main = {k: v for k, v in d.items() if isinstance(k, str) and _scalar(v)}        # the CRM's own fields
    main.update({k: v for k, v in (record.fields or {}).items() if isinstance(k, str) and _scalar(v)})
    main.update({"id": d.get("id", record.id), "title": title_of(record),
                 "status": record.status or d.get("status"), "url": record.url, "pipeline": record.pipeline,
                 "stage": record.stage, "owner": record.owner, "value": money_of(record) if carry.value else None})
    person = org = None
    if carry.contacts and record.person:
        p = record.person
        person = {"name": p.get("name"), "email": _primary(p.get("emails") or p.get("email")),
                  "phone": _primary(p.get("phones") or p.get("phone")),
                  "emails": _values(p.get("emails") or p.get("email")),
                  "phones": _values(p.get("phones") or p.get("phone"))}
    if carry.contacts and record.org:
        org = {"name": record.org.get("name"), "address": _address(record.org)}
    taken: set[str] = set()
    fields = {alias(m.label, taken): text for m, text in mapped_values(_sources(record), mappings)}
    context: dict[str, Any] = {kind: None for kind in OBJECT_KINDS}
    context.update({"record": main, "person": person, "org": org,
                    "notes": [{"content": n.get("content", ""), "added": n.get("added", n.get("add_time"))}
                              for n in record.notes] if carry.notes else [],
                    "files": [file_name(f) for f in record.files] if carry.attachments else [],
                    "fields": fields, "event": event or {}, "rule": {"name": rule_name}})
    if record.kind in OBJECT_KINDS and not (record.kind == "person" and person):
        context[record.kind] = main
    if record.kind in ("org", "organization"):
        context["org"] = context["org"] or main
        context["organization"] = context["organization"] or main
    return context


def _sources(record: SourceRecord) -> dict[str, dict | None]:
    """What field mappings read: the record's own data (as `deal`, the first object kind mappings
    knew, and as `record`) and the linked person's."""
    return {"deal": record.data, "record": record.data, "person": record.person}


def _line(label: str, value: Any) -> Markup:
    return Markup("<strong>{}:</strong> {}\n").format(label, value)


def _mail(address: str) -> Markup:
    return Markup('<a href="mailto:{0}">{0}</a>').format(address) if re.fullmatch(r"[^\s@<>]+@[^\s@<>]+", address) \
        else escape(address)


def details_html(record: SourceRecord, carry: Carry, mappings: list[Mapping]) -> Markup:
    """The carried data, one line each, after the admin's description."""
    out = Markup("")
    title = escape(title_of(record))
    if (record.url or "").startswith(("https://", "http://")):
        title = Markup('<a href="{}">{}</a>').format(record.url, title_of(record))
    out += _line(record.kind.replace("_", " ").capitalize(), title)
    if carry.value and money_of(record):
        out += _line("Value", money_of(record))
    if carry.contacts and record.person:
        p = record.person
        parts = [escape(p.get("name") or "")]
        email, phone = _primary(p.get("emails") or p.get("email")), _primary(p.get("phones") or p.get("phone"))
        if email:
            parts.append(_mail(str(email)))
        if phone:
            parts.append(escape(phone))
        out += _line("Contact", Markup(", ").join(x for x in parts if x))
    if carry.contacts and record.org:
        parts = [escape(record.org.get("name") or "")]
        if _address(record.org):
            parts.append(escape(_address(record.org)))
        out += _line("Organization", Markup(", ").join(x for x in parts if x))
    for m, text in mapped_values(_sources(record), mappings):
        out += _line(m.label, text)
    if carry.notes and record.notes:
        heading = Markup("<h2>Pinned notes</h2>")
        # note content is the CRM's HTML: kept as markup, cleaned by clean_html below
        items = Markup("").join(Markup("<li>{}</li>").format(Markup(n.get("content") or "")) for n in record.notes)
        out += heading + Markup("<ul>") + items + Markup("</ul>")
    return out


class TargetRenderer:
    """Renders a step's templates for one record within the limits, in a render process (pool.py):
    what a template costs is paid there, never by the hub's threads (templates that only print data
    cost no more than a dict look-up and are rendered in-process, direct.py). Templates are named by their
    slot (`name`, `description`; an e-mail's `to`, `subject`, `body`); a problem names its slot."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()

    def check_templates(self, templates: dict[str, tuple[bool, str]]) -> dict[str, str]:
        """Problems by slot ({} when all are fine) of {slot: (html?, source)}, including a trial
        render against a sample record, so an unsafe or runaway template is refused when saved."""
        if not templates:
            return {}
        ctx = template_context(sample_record(), Carry(True, True, True, True), [], event={"kind": "deal.won"},
                               rule_name="sample")
        slots = list(templates)
        outcomes = pool.render(self.limits, ctx, [Job(templates[s][0], templates[s][1], KNOWN_NAMES) for s in slots])
        return {slot: outcome.problem for slot, outcome in zip(slots, outcomes) if outcome.problem}

    def check(self, name_template: str, description_template: str) -> dict[str, str]:
        """The two templates of a step that makes something, by their old field names."""
        problems = self.check_templates({"name": (False, name_template), "description": (True, description_template)})
        return {f"{slot}_template": problem for slot, problem in problems.items()}

    def render_texts(self, templates: dict[str, str], record: SourceRecord, carry: Carry, mappings: list[Mapping], *,
                     event: dict[str, Any] | None = None, rule_name: str = "") -> dict[str, str]:
        """Plain-text renders by slot (an e-mail's); TemplateProblem names the slot."""
        ctx = template_context(record, carry, mappings, event=event, rule_name=rule_name)
        slots = list(templates)
        outcomes = pool.render(self.limits, ctx, [Job(False, templates[s]) for s in slots])
        for slot, outcome in zip(slots, outcomes):
            if outcome.problem:
                raise TemplateProblem(f"{slot}: {outcome.problem}")
        return {slot: outcome.text for slot, outcome in zip(slots, outcomes)}

    def render(self, name_template: str, description_template: str, record: SourceRecord, carry: Carry,
               mappings: list[Mapping], *, event: dict[str, Any] | None = None, rule_name: str = "") -> Rendered:
        """A name (one line) and a description (neutral rich text with the details block).
        Raises TemplateProblem (prefixed with the slot) when a template fails on this record."""
        ctx = template_context(record, carry, mappings, event=event, rule_name=rule_name)
        name_out, intro_out = pool.render(self.limits, ctx, [Job(False, name_template), Job(True, description_template)])
        if name_out.problem:
            raise TemplateProblem(f"name: {name_out.problem}")
        if intro_out.problem:
            raise TemplateProblem(f"description: {intro_out.problem}")
        warnings: list[str] = []
        name = " ".join(name_out.text.split())
        if not name:
            name = title_of(record) or f"{record.kind} {record.id or record.data.get('id')}"
            warnings.append("the name template gave an empty name; the title was used")
        if len(name) > NAME_MAX:
            name = name[:NAME_MAX - 1] + "…"
            warnings.append(f"the name was cut to {NAME_MAX} characters")
        intro = intro_out.text.strip()
        body = Markup(intro) + (Markup("\n\n") if intro else Markup("")) + details_html(record, carry, mappings)
        html = clean_html(str(body))
        if len(html) > self.limits.output_max_chars * 2:
            raise TemplateProblem(f"description: the description is longer than "
                                  f"{self.limits.output_max_chars * 2} characters")
        return Rendered(name, html, warnings)


def sample_record() -> SourceRecord:
    """A believable deal with every kind of data, for trial renders when a template is saved."""
    return SourceRecord(
        kind="deal", id="1", url="https://crm.example/deal/1", title="Sample deal", status="won",
        amount="1,000 EUR",
        data={"id": 1, "title": "Sample deal", "value": 1000, "currency": "EUR", "status": "won",
              "lost_reason": None, "expected_close_date": "2026-12-31", "custom_fields": {}},
        pipeline="Sales", stage="Negotiations", owner="Sample Owner",
        person={"name": "Sample Person", "emails": [{"value": "person@example.com", "primary": True}],
                "phones": [{"value": "+1 555 0100", "primary": True}], "email": "person@example.com"},
        org={"name": "Sample Org", "address": {"value": "1 Sample Street"}},
        notes=[{"content": "A pinned note", "add_time": "2026-01-01 00:00:00"}],
        files=[{"id": 1, "name": "sample.pdf", "size": 10}])

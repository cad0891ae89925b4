"""From a CRM record to what lands in the target: the template context, the automatic details
block (the data the rule carries), and valid Asana rich text.

Data flow: the rule's data toggles decide what is fetched and offered (`Carry`); the admin's name
and description templates decide the wording; the details block lists the carried data (value,
contacts, mapped fields, pinned notes) after the description, so switching a toggle on is enough
to see its data in Asana. Everything user-supplied is escaped by the template's autoescape or
here, and the result is passed through `richtext.to_html_notes`, so `<`, `&` or stray HTML in a
deal never produce invalid `html_notes`."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from markupsafe import Markup, escape

from ..connectors.asana.richtext import to_html_notes
from .fields import Mapping, alias, format_money, mapped_values
from . import pool
from .pool import Job
from .render import Limits, TemplateProblem

NAME_MAX = 500
KNOWN_NAMES = ("deal", "lead", "record", "person", "org", "notes", "files", "fields", "event", "rule")
Target = Literal["task", "project"]


@dataclass
class Carry:
    """The data toggles of a rule. The title is always carried and has no toggle."""

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


@dataclass
class SourceRecord:
    """A deal or lead with what the rule carries, as read from the CRM (see hub.rules.sources)."""

    kind: str                              # deal | lead
    data: dict[str, Any]
    url: str = ""
    pipeline: str | None = None
    stage: str | None = None
    owner: str | None = None
    person: dict[str, Any] | None = None
    org: dict[str, Any] | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return str(self.data.get("title") or "")

    def money(self) -> str | None:
        data = self.data
        if isinstance(data.get("value"), dict):            # leads: {amount, currency}
            return format_money(data["value"].get("amount"), data["value"].get("currency"))
        return format_money(data.get("value"), data.get("currency"))


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


def template_context(record: SourceRecord, carry: Carry, mappings: list[Mapping], *,
                     event: dict[str, Any] | None = None, rule_name: str = "") -> dict[str, Any]:
    d = record.data
    main = {"id": d.get("id"), "title": record.title, "status": d.get("status"), "url": record.url,
            "pipeline": record.pipeline, "stage": record.stage, "owner": record.owner,
            "lost_reason": d.get("lost_reason"), "expected_close_date": d.get("expected_close_date"),
            "won_time": d.get("won_time"), "lost_time": d.get("lost_time"), "add_time": d.get("add_time"),
            "value": record.money() if carry.value else None}
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
    fields = {alias(m.label, taken): text for m, text in
              mapped_values({"deal": d, "person": record.person}, mappings)}
    return {"deal": main if record.kind == "deal" else None, "lead": main if record.kind == "lead" else None,
            "record": main, "person": person, "org": org,
            "notes": [{"content": n.get("content", ""), "added": n.get("add_time")} for n in record.notes]
            if carry.notes else [],
            "files": [f.get("name") or f.get("file_name") for f in record.files] if carry.attachments else [],
            "fields": fields, "event": event or {}, "rule": {"name": rule_name}}


def _line(label: str, value: Any) -> Markup:
    return Markup("<strong>{}:</strong> {}\n").format(label, value)


def _mail(address: str) -> Markup:
    return Markup('<a href="mailto:{0}">{0}</a>').format(address) if re.fullmatch(r"[^\s@<>]+@[^\s@<>]+", address) \
        else escape(address)


def details_html(record: SourceRecord, carry: Carry, mappings: list[Mapping], target: Target) -> Markup:
    """The carried data, one line each, after the admin's description."""
    out = Markup("")
    title = escape(record.title)
    if record.url.startswith(("https://", "http://")):
        title = Markup('<a href="{}">{}</a>').format(record.url, record.title)
    out += _line("Deal" if record.kind == "deal" else "Lead", title)
    if carry.value and record.money():
        out += _line("Value", record.money())
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
    for m, text in mapped_values({"deal": record.data, "person": record.person}, mappings):
        out += _line(m.label, text)
    if carry.notes and record.notes:
        heading = Markup("<h2>Pinned notes</h2>") if target == "task" else Markup("\n<strong>Pinned notes</strong>\n")
        # note content is the CRM's (sanitized) HTML: kept as markup, cleaned by to_html_notes below
        items = Markup("").join(Markup("<li>{}</li>").format(Markup(n.get("content") or "")) for n in record.notes)
        out += heading + Markup("<ul>") + items + Markup("</ul>")
    return out


class TargetRenderer:
    """Renders a rule's name and description templates for one record within the limits, in a
    render process (pool.py): what a template costs is paid there, never by the hub's threads."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()

    def check(self, name_template: str, description_template: str) -> dict[str, str]:
        """Field errors of the two templates ({} when both are fine), including a trial render
        against a sample record, so an unsafe or runaway template is refused when saved."""
        sample = sample_record()
        ctx = template_context(sample, Carry(True, True, True, True), [], event={"kind": "deal.won"},
                               rule_name="sample")
        outcomes = pool.render(self.limits, ctx, [Job(False, name_template, KNOWN_NAMES),
                                                  Job(True, description_template, KNOWN_NAMES)])
        return {field_name: outcome.problem for field_name, outcome in zip(("name_template", "description_template"),
                                                                          outcomes) if outcome.problem}

    def render(self, name_template: str, description_template: str, record: SourceRecord, carry: Carry,
               mappings: list[Mapping], *, target: Target, event: dict[str, Any] | None = None,
               rule_name: str = "") -> Rendered:
        """Raises TemplateProblem (prefixed with the field) when a template fails on this record."""
        ctx = template_context(record, carry, mappings, event=event, rule_name=rule_name)
        name_out, intro_out = pool.render(self.limits, ctx, [Job(False, name_template), Job(True, description_template)])
        if name_out.problem:
            raise TemplateProblem(f"name_template: {name_out.problem}")
        if intro_out.problem:
            raise TemplateProblem(f"description_template: {intro_out.problem}")
        warnings: list[str] = []
        name = " ".join(name_out.text.split())
        if not name:
            name = record.title or f"{record.kind} {record.data.get('id')}"
            warnings.append("the name template gave an empty name; the title was used")
        if len(name) > NAME_MAX:
            name = name[:NAME_MAX - 1] + "…"
            warnings.append(f"the name was cut to {NAME_MAX} characters")
        intro = intro_out.text.strip()
        body = Markup(intro) + (Markup("\n\n") if intro else Markup("")) + details_html(record, carry, mappings, target)
        html = to_html_notes(str(body), source="html", target=target)
        if len(html) > self.limits.output_max_chars * 2:
            raise TemplateProblem(f"description_template: the description is longer than "
                                  f"{self.limits.output_max_chars * 2} characters")
        return Rendered(name, html, warnings)


def sample_record() -> SourceRecord:
    """A believable deal with every kind of data, for trial renders when a template is saved."""
    return SourceRecord(
        kind="deal", url="https://example.pipedrive.com/deal/1",
        data={"id": 1, "title": "Sample deal", "value": 1000, "currency": "EUR", "status": "won",
              "lost_reason": None, "expected_close_date": "2026-12-31", "custom_fields": {}},
        pipeline="Sales", stage="Negotiations", owner="Sample Owner",
        person={"name": "Sample Person", "emails": [{"value": "person@example.com", "primary": True}],
                "phones": [{"value": "+1 555 0100", "primary": True}]},
        org={"name": "Sample Org", "address": {"value": "1 Sample Street"}},
        notes=[{"content": "A pinned note", "add_time": "2026-01-01 00:00:00"}],
        files=[{"id": 1, "name": "sample.pdf", "file_size": 10}])

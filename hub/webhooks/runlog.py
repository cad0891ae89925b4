"""Which events the run log lists, and what each came to: filters, paging and outcomes, in SQL, for
the page and the JSON API alike (web.py).

An event "concerns a rule" when a rule ran for it or left a trace on it (matched, skipped it, had
already run once), or when a rule with its trigger kind was active when it was recorded. The
others (every `deal.updated` no rule listens to) are hidden unless asked for. What an event came
to is its rules' worst: failed, in progress, done, skipped (a rule looked, none ran), or no rule.

Pages go by id (`before`: older than, `after`: newer than), so a page never shifts while new
events arrive and no event is left out between pages."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from sqlalchemy import and_, exists, func, not_, or_, select

from ..inputs import MAX_INT, InputError, check_text, optional_int
from ..store import HubEvent, RunLog
from ..store.models import Rule, RuleRun

IN_FLIGHT = ("queued", "running", "retrying", "reconnect", "waiting")
OUTCOMES = ("failed", "pending", "done", "skipped", "none")
TITLE_KEYS = ("title", "name", "subject")     # what CRM objects call their title, in events' data
MAX_QUERY = 200


@dataclass(frozen=True)
class Filters:
    rule_id: int | None = None
    status: str | None = None          # one of OUTCOMES
    object_type: str | None = None
    since: datetime | None = None      # recorded at or after (UTC, naive like the columns)
    until: datetime | None = None      # recorded before
    q: str = ""                        # an object id, or part of the object's title
    all: bool = False                  # also the events that concern no rule
    raw: dict[str, str] = field(default_factory=dict, compare=False)   # as given, for links and forms

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> "Filters":
        """From a query string; InputError (400) naming the parameter when one is not usable."""
        raw = {k: str(args.get(k) or "").strip() for k in ("rule_id", "status", "object_type", "since", "until",
                                                           "q", "all")}
        for key, value in raw.items():
            check_text(value, key)
        status = raw["status"] or None
        if status is not None and status not in OUTCOMES:
            raise InputError.of("status", f"one of {', '.join(OUTCOMES)}")
        if len(raw["q"]) > MAX_QUERY:
            raise InputError.of("q", f"at most {MAX_QUERY} characters")
        if len(raw["object_type"]) > 40:
            raise InputError.of("object_type", "at most 40 characters")
        if raw["all"] not in ("", "0", "1", "true", "false"):
            raise InputError.of("all", "1 (show every event) or 0")
        since, until = _moment(raw["since"], "since"), _moment(raw["until"], "until", end=True)
        if since and until and since >= until:
            raise InputError.of("until", "must be later than since")
        return cls(rule_id=optional_int(raw["rule_id"], "rule_id", low=1), status=status,
                   object_type=raw["object_type"] or None, since=since, until=until, q=raw["q"],
                   all=raw["all"] in ("1", "true") or status == "none", raw={k: v for k, v in raw.items() if v})

    @property
    def narrowed(self) -> bool:
        return any(v not in (None, "", False) for k, v in asdict(self).items() if k not in ("raw", "all"))


def _moment(text: str, name: str, *, end: bool = False) -> datetime | None:
    """`2024-05-01`, `2024-05-01T10:30` (a browser's datetime-local) or a full ISO time with an
    offset; a date alone as `until` means the end of that day."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        if end and len(text) == 10:
            moment += timedelta(days=1)
    except (ValueError, OverflowError):
        raise InputError.of(name, "a date (2024-05-01) or a time (2024-05-01T10:30), UTC") from None
    return moment


# -- SQL ----------------------------------------------------------------------------------------------
def _runs(installation_id: int, *statuses: str):
    query = select(RuleRun.hub_event_id).where(RuleRun.installation_id == installation_id)
    return query.where(RuleRun.status.in_(statuses)) if statuses else query


def concerns_a_rule(installation_id: int):
    """The SQL condition on HubEvent: a rule ran for it, left a trace on it, or listened for its kind."""
    listening = exists().where(Rule.installation_id == installation_id, Rule.trigger == HubEvent.kind,
                               Rule.activated_at.is_not(None), Rule.activated_at <= HubEvent.created_at)
    return or_(HubEvent.id.in_(_runs(installation_id)), _traced(RunLog.rule_id.is_not(None)), listening)


def _traced(*where):
    """A run log entry on the event (correlated: probed through the log's index on the event, so
    a page walks the newest events without reading the whole log)."""
    return exists().where(RunLog.hub_event_id == HubEvent.id, *where)


def title_of(data: dict | None) -> str:
    """The object's title as the event saw it (its state before, for a deletion)."""
    data = data or {}
    for state in (data.get("current"), data.get("previous")):
        if isinstance(state, dict):
            for key in TITLE_KEYS:
                if state.get(key) not in (None, ""):
                    return str(state[key])
    return ""


def _title_sql():
    return func.coalesce(*[HubEvent.data[state][key].as_string() for state in ("current", "previous")
                           for key in TITLE_KEYS])


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def conditions(installation_id: int, f: Filters) -> list:
    where = [HubEvent.installation_id == installation_id]
    if f.object_type:
        where.append(HubEvent.object_type == f.object_type)
    if f.since:
        where.append(HubEvent.created_at >= f.since)
    if f.until:
        where.append(HubEvent.created_at < f.until)
    if f.q:
        where.append(or_(HubEvent.object_id == f.q, _title_sql().ilike(_like(f.q), escape="\\")))
    if f.rule_id is not None:
        where.append(or_(_traced(RunLog.rule_id == f.rule_id),
                         HubEvent.id.in_(_runs(installation_id).where(RuleRun.rule_id == f.rule_id))))
    concerned = concerns_a_rule(installation_id)
    if f.status == "failed":
        where.append(HubEvent.id.in_(_runs(installation_id, "failed")))
    elif f.status == "pending":
        where.append(HubEvent.id.in_(_runs(installation_id, *IN_FLIGHT)))
    elif f.status == "done":
        where.append(HubEvent.id.in_(_runs(installation_id, "done")))
    elif f.status == "skipped":
        where += [concerned, HubEvent.id.not_in(_runs(installation_id, "done", "failed", *IN_FLIGHT))]
    elif f.status == "none":
        where.append(not_(concerned))
    elif not f.all:
        where.append(concerned)
    return where


@dataclass
class Page:
    events: list[HubEvent]
    next_before: int | None     # `before` of the next, older page; None on the last
    newer_after: int | None     # `after` of the newer page; None on the first (newest)


def page(session, installation_id: int, f: Filters, limit: int, before: int | None = None,
         after: int | None = None) -> Page:
    """The newest `limit` events (older than `before`, or else newer than `after`), newest first."""
    where = conditions(installation_id, f)
    query = select(HubEvent).where(*where)
    if after is not None and before is None:
        rows = list(session.scalars(query.where(HubEvent.id > after).order_by(HubEvent.id).limit(limit + 1)))
        newer = len(rows) > limit
        rows = rows[:limit][::-1]
        if not rows:
            return Page([], min(after + 1, MAX_INT) if _any(session, where, HubEvent.id <= after) else None, None)
        return Page(rows, rows[-1].id if _any(session, where, HubEvent.id < rows[-1].id) else None,
                    rows[0].id if newer else None)
    if before is not None:
        query = query.where(HubEvent.id < before)
    rows = list(session.scalars(query.order_by(HubEvent.id.desc()).limit(limit + 1)))
    older = len(rows) > limit
    rows = rows[:limit]
    newer_after = None
    if before is not None:
        edge = rows[0].id if rows else before - 1
        newer_after = edge if _any(session, where, HubEvent.id > edge) else None
    return Page(rows, rows[-1].id if older else None, newer_after)


def _any(session, where: list, edge) -> bool:
    return session.scalar(select(HubEvent.id).where(*where, edge).limit(1)) is not None


# -- what each listed event came to -------------------------------------------------------------------
@dataclass
class RuleOutcome:
    rule_id: int
    name: str
    status: str                 # a run's status, or "skipped" (looked and did not run)
    reason: str = ""            # why it was skipped, in words, when the log says
    exists: bool = True         # False: the rule was deleted since


@dataclass
class Summary:
    outcome: str                # one of OUTCOMES
    rules: list[RuleOutcome]


def _worst(statuses: list[str]) -> str:
    if "failed" in statuses:
        return "failed"
    if any(s in IN_FLIGHT for s in statuses):
        return "pending"
    if "done" in statuses:
        return "done"
    return "skipped" if statuses else "none"


def _name(rules: dict, rule_id: int) -> str:
    return rules[rule_id].name if rule_id in rules else f"rule {rule_id} (deleted)"


def summaries(session, installation_id: int, events: list[HubEvent]) -> dict[int, Summary]:
    """Per listed event: the rules that concerned it and how each ended (three queries a page)."""
    ids = [e.id for e in events]
    if not ids:
        return {}
    rules = {r.id: r for r in session.scalars(select(Rule).where(Rule.installation_id == installation_id))}
    runs: dict[int, dict[int, str]] = {}
    for event_id, rule_id, status in session.execute(select(RuleRun.hub_event_id, RuleRun.rule_id, RuleRun.status)
                                                     .where(RuleRun.installation_id == installation_id,
                                                            RuleRun.hub_event_id.in_(ids))
                                                     .order_by(RuleRun.id)):
        runs.setdefault(event_id, {})[rule_id] = status
    reasons: dict[int, dict[int, str]] = {}
    for event_id, rule_id, step, detail in session.execute(
            select(RunLog.hub_event_id, RunLog.rule_id, RunLog.step, RunLog.detail)
            .where(RunLog.installation_id == installation_id, RunLog.hub_event_id.in_(ids),
                   RunLog.rule_id.is_not(None)).order_by(RunLog.id)):
        seen = reasons.setdefault(event_id, {})
        if step == "rule.not_matched":
            seen[rule_id] = str((detail or {}).get("reason") or "it does not fit the rule")
        elif step == "rule.once":
            seen[rule_id] = "it fires once per object and already ran for this one"
        else:
            seen.setdefault(rule_id, "")
    out: dict[int, Summary] = {}
    for e in events:
        ran = runs.get(e.id, {})
        looked = dict(reasons.get(e.id, {}))
        for rule in rules.values():
            if rule.trigger == e.kind and rule.activated_at is not None and rule.activated_at <= e.created_at:
                looked.setdefault(rule.id, "")
        found = [RuleOutcome(rid, _name(rules, rid), status, exists=rid in rules) for rid, status in ran.items()]
        found += [RuleOutcome(rid, _name(rules, rid), "skipped", reason, exists=rid in rules)
                  for rid, reason in looked.items() if rid not in ran]
        out[e.id] = Summary(_worst([r.status for r in found]), found)
    return out

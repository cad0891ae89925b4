"""Tables of the foundation. Later features add theirs beside these (and a migration each).

Times are naive UTC everywhere (`hub.store.utcnow`): SQLite has no time zones, and comparing
naive UTC values in SQL behaves the same on both engines."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, Index, Integer, LargeBinary, String, Text, false, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .clock import utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # whose work this is: lists, the dead letter and replay filter on it (None: global work only)
    installation_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued running done dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    failed_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # its effect's retry budget used
    failing_provider: Mapped[str | None] = mapped_column(String(40), nullable=True)   # whose failures those are
    run_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    locked_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    ordering_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (
        # a claim walks it in claim order (hub/jobs/queue.py): the due jobs by (run_at, id), and
        # stops once it has taken its batch, however long the backlog
        Index("ix_jobs_claim", "status", "run_at", "id"),
        Index("ix_jobs_ordering", "ordering_key", "status"),
        Index("ix_jobs_installation", "installation_id", "status", "id"),
    )


class Secret(Base):
    """Every secret the hub keeps, encrypted with the current key ring (one table, so rotation is one pass)."""

    __tablename__ = "secrets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(200), unique=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ProcessHeartbeat(Base):
    """Workers and schedulers report here; /readyz and the operator read it."""

    __tablename__ = "process_heartbeats"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))  # worker | scheduler
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    is_leader: Mapped[bool] = mapped_column(default=False)
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Installation(Base):
    """One company's install of the hub from its CRM's marketplace (reinstalls reuse the row)."""

    __tablename__ = "installations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(40))
    company_id: Mapped[str] = mapped_column(String(100))
    company_name: Mapped[str] = mapped_column(String(300), default="")
    company_domain: Mapped[str] = mapped_column(String(300), default="")
    api_domain: Mapped[str] = mapped_column(String(500), default="")
    installer_user_id: Mapped[str] = mapped_column(String(100))
    installer_name: Mapped[str] = mapped_column(String(300), default="")
    installer_email: Mapped[str] = mapped_column(String(300), default="")
    visibility: Mapped[str] = mapped_column(String(20), default="only_me")  # all | only_me | specific
    visibility_confirmed: Mapped[bool] = mapped_column(default=False)
    shared_signal: Mapped[bool | None] = mapped_column(nullable=True)  # last app-sharing callback's isShared
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | uninstalled
    endpoint_token: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    uninstalled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (Index("ux_installations_company", "provider", "company_id", unique=True),)


class InstallationUser(Base):
    """A CRM user the hub knows in an installation: chosen for 'specific users' and/or signed in."""

    __tablename__ = "installation_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId, index=True)
    crm_user_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str] = mapped_column(String(300), default="")
    is_admin: Mapped[bool] = mapped_column(default=False)
    allowed: Mapped[bool] = mapped_column(default=False)       # on the 'specific users' list
    # "admin" or "user"; the installer is an admin whatever this says (hub/oauth/members.py)
    role: Mapped[str] = mapped_column(String(10), default="user", server_default="user")
    notified_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (Index("ux_installation_users", "installation_id", "crm_user_id", unique=True),)


class Connection(Base):
    """An OAuth grant the hub holds: a CRM user's (role crm) or a target account's (role target).
    Its tokens live encrypted in `secrets` under `connection:<id>:...`."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId, index=True)
    provider: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(20))  # crm | target
    account_id: Mapped[str] = mapped_column(String(300))
    account_name: Mapped[str] = mapped_column(String(300), default="")
    account_email: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(30), default="connected")  # connected | needs_reconnection | disconnected
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    scopes: Mapped[str] = mapped_column(Text, default="")
    api_base: Mapped[str] = mapped_column(String(500), default="")
    token_url: Mapped[str] = mapped_column(String(500), default="")
    revoke_url: Mapped[str] = mapped_column(String(500), default="")
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    refresh_due_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # refresh ahead of expiry
    refresh_count: Mapped[int] = mapped_column(Integer, default=0)
    last_refreshed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    reauth_notified_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    connected_by: Mapped[str] = mapped_column(String(100), default="")
    owner_user_id: Mapped[str] = mapped_column(String(100), default="", server_default="")  # CRM user who connected it
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_connections_lookup", "installation_id", "provider", "role"),)


class WebSession(Base):
    """A signed-in browser. The cookie carries a random id and this row its SHA-256, so sign-out and
    removal from an installation end the session in every web process (and a database leak does not
    yield usable ids); a cookie whose row is gone is signed out."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    crm_user_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_web_sessions_user", "installation_id", "crm_user_id"),
                      Index("ix_web_sessions_expires", "expires_at"))


class AuditEvent(Base):
    """Who did what to an installation; kept after uninstall."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int | None] = mapped_column(BigId, nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class InboxEvent(Base):
    """A webhook exactly as received (after verification), stored before the hub answers."""

    __tablename__ = "inbox_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    provider: Mapped[str] = mapped_column(String(40))
    event_key: Mapped[str] = mapped_column(String(200))  # the provider's event id: retries share it
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="received")  # received processed failed ignored
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (Index("ux_inbox_events_key", "installation_id", "event_key", unique=True),
                      Index("ix_inbox_events_received", "installation_id", "received_at"))


class HubEvent(Base):
    """A normalized CRM event (deal.won ...). `occurrence` names what happened in the CRM (deal 42 won
    at T), so a webhook, its retries and the reconciliation poll all land on one row."""

    __tablename__ = "hub_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    occurrence: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(20))  # webhook | reconcile | replay
    inbox_event_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # current, previous, pipeline, stages
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ux_hub_events_occurrence", "installation_id", "occurrence", unique=True),
                      Index("ix_hub_events_object", "installation_id", "object_type", "object_id"))


class ObjectState(Base):
    """The newest known state of a CRM object; an older event never overwrites a newer state."""

    __tablename__ = "object_states"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(60), default="")
    deleted: Mapped[bool] = mapped_column(default=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ux_object_states", "installation_id", "object_type", "object_id", unique=True),)


class RegisteredWebhook(Base):
    """A webhook the hub created at a provider (deleted again on uninstall)."""

    __tablename__ = "registered_webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId, index=True)
    provider: Mapped[str] = mapped_column(String(40))
    remote_id: Mapped[str] = mapped_column(String(100))
    event_action: Mapped[str] = mapped_column(String(40))
    event_object: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RunLog(Base):
    """The trace of an event's path: received, matched rules, jobs, provider calls, result or error."""

    __tablename__ = "run_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    hub_event_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    inbox_event_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    rule_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    sync_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    job_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    step: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="ok")  # ok info error
    message: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_run_log_installation", "installation_id", "id"),
                      Index("ix_run_log_event", "hub_event_id"),
                      Index("ix_run_log_rule", "rule_id", "id"),
                      Index("ix_run_log_sync", "sync_id", "id"))


class Bookmark(Base):
    """A named cursor (reconciliation's updated_since, a sync's tokens), saved after each batch."""

    __tablename__ = "bookmarks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ux_bookmarks", "installation_id", "name", unique=True),)


# --- contact sync ---
class ContactSync(Base):
    """One CRM persons <-> address book label sync. `lease_until`/`lease_owner` make sure only one
    run works on it at a time (a killed run's lease runs out and the next run resumes its work)."""

    __tablename__ = "contact_syncs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId, index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    store_connection_id: Mapped[int] = mapped_column(BigId)  # the address book account (a contact_store connection)
    group_resource_name: Mapped[str] = mapped_column(String(200), default="")
    group_name: Mapped[str] = mapped_column(String(300), default="")
    direction: Mapped[str] = mapped_column(String(20), default="two_way")  # two_way crm_to_store store_to_crm
    person_filter: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {} = all; owner_id / org_id
    field_map: Mapped[list[Any]] = mapped_column(JSON, default=list)
    conflict_policy: Mapped[str] = mapped_column(String(20), default="newest")  # newest crm store
    # a record deleted on one side and edited on the other since the last run: edit_wins | delete_wins
    delete_policy: Mapped[str] = mapped_column(String(20), default="edit_wins", server_default="edit_wins")
    schedule_seconds: Mapped[int] = mapped_column(Integer, default=900)  # 0 = only on demand
    delete_share: Mapped[float] = mapped_column(Float, default=0.2)
    contact_cap: Mapped[int] = mapped_column(Integer, default=25000)
    enabled: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(30), default="idle")  # idle running awaiting_confirmation error
    status_message: Mapped[str] = mapped_column(Text, default="")
    pending_deletes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lease_owner: Mapped[str | None] = mapped_column(String(120), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_run_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # a share of sync `parent_id` with a colleague's own address book account: "edit" or "read" ("" = not a share)
    parent_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    share_mode: Mapped[str] = mapped_column(String(10), default="", server_default="")

    __table_args__ = (Index("ix_contact_syncs_parent", "parent_id"),)


class SyncRun(Base):
    """One run of a sync: trigger, phase progress (done/total), counts, outcome."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sync_id: Mapped[int] = mapped_column(BigId)
    job_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    trigger: Mapped[str] = mapped_column(String(20), default="schedule")  # schedule manual event cli
    status: Mapped[str] = mapped_column(String(20), default="running")  # running done paused failed
    phase: Mapped[str] = mapped_column(String(30), default="")
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (Index("ix_sync_runs_sync", "sync_id", "id"),)


class SyncLink(Base):
    """CRM person <-> stored contact, with the last synced values (`base`, for the per-field 3-way
    merge) and each side's fingerprint/version as the hub last wrote or read it (echo suppression).
    state: linked | left_out (not created: cap) | crm_creating (write-ahead of a CRM create)."""

    __tablename__ = "sync_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sync_id: Mapped[int] = mapped_column(BigId)
    crm_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    resource_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    state: Mapped[str] = mapped_column(String(20), default="linked")
    note: Mapped[str] = mapped_column(Text, default="")
    display_name: Mapped[str] = mapped_column(String(300), default="")
    base: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    crm_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    crm_version: Mapped[str] = mapped_column(String(60), default="")
    store_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    store_etag: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ux_sync_links_crm", "sync_id", "crm_id", unique=True),
                      Index("ix_sync_links_resource", "sync_id", "resource_name"))


class SyncConflict(Base):
    """A field both sides changed since the last run, and which side won under the policy."""

    __tablename__ = "sync_conflicts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sync_id: Mapped[int] = mapped_column(BigId)
    run_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    crm_id: Mapped[str] = mapped_column(String(100))
    resource_name: Mapped[str] = mapped_column(String(200), default="")
    field: Mapped[str] = mapped_column(String(120))
    crm_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    store_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    winner: Mapped[str] = mapped_column(String(10))
    policy: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text, default="", server_default="")  # in words, e.g. a delete beaten by an edit
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_sync_conflicts_sync", "sync_id", "id"),)


# --- rules and mappings ---
class Rule(Base):
    """An automation: when `trigger` happens to a CRM object (and the conditions hold), run its
    ordered steps (`RuleStep`). Only `active` rules match events; `version` grows with every save,
    so a failure after an edit is reported again (and only once per version)."""

    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="draft")  # draft | active
    preset: Mapped[str] = mapped_column(String(40), default="")       # the ready automation it came from
    trigger: Mapped[str] = mapped_column(String(40))                  # a neutral event kind: deal.won lead.added ...
    pipeline_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    stage_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # every: one run per occurrence (won, reopened, won again: two); once: one run per object ever
    fires: Mapped[str] = mapped_column(String(10), default="every", server_default="every")
    conditions: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{field, op, value}]
    # the trigger's other params: {param: value or [values] (any of them)} (0015_leads_object_flags)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # the page that wrote it ("automation:<catalog>:<entry>:<preset>"), "" for the editor's rules
    origin: Mapped[str] = mapped_column(String(200), default="", server_default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    notified_version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # failure e-mail sent for
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (Index("ix_rules_match", "installation_id", "status", "trigger"),
                      Index("ix_rules_origin", "installation_id", "origin"))


class RuleStep(Base):
    """One step of a rule, in `position` order. `uid` stays the same across edits (reordering
    included), so a run that waits or is retried finds its place and its effects again. `kind` is
    `<connector>.<what>` (a connector's step: create a task, a project, a record) or a core kind
    (complete_linked, email, wait, branch)."""

    __tablename__ = "rule_steps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(BigId)
    position: Mapped[int] = mapped_column(Integer, default=0)
    uid: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(80))
    connection_id: Mapped[int | None] = mapped_column(BigId, nullable=True)   # the account a connector step uses
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)      # the kind's own settings
    templates: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)     # name, description / to, subject, body
    carry: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)         # {value, contacts, notes, attachments}
    mappings: Mapped[list[Any]] = mapped_column(JSON, default=list)           # [{source, key, label, type, options}]
    condition: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # {field, op, value}
    delay_seconds: Mapped[int] = mapped_column(Integer, default=0)            # wait this long before the step
    due_in_days: Mapped[int | None] = mapped_column(Integer, nullable=True)   # a task's deadline, from its step

    __table_args__ = (Index("ux_rule_steps_uid", "rule_id", "uid", unique=True),
                      Index("ix_rule_steps_rule", "rule_id", "position"))


class RuleRun(Base):
    """One rule applied to one event occurrence. `effect_key` (rule, object, occurrence) is unique:
    however often the event or its job arrives, there is one run; each of its steps has a
    `RuleStepRun` of its own. A run waiting for a delay has `wake_at` and the step it waits at."""

    __tablename__ = "rule_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    rule_id: Mapped[int] = mapped_column(BigId)
    hub_event_id: Mapped[int] = mapped_column(BigId)
    effect_key: Mapped[str] = mapped_column(String(200))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(100))
    # queued running retrying reconnect waiting (for a delay) done failed skipped stopped
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    step_uid: Mapped[str | None] = mapped_column(String(16), nullable=True)   # where it is (or stopped)
    wake_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # warnings
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (Index("ux_rule_runs_effect", "installation_id", "effect_key", unique=True),
                      Index("ix_rule_runs_rule", "rule_id", "id"),
                      Index("ix_rule_runs_object", "rule_id", "object_type", "object_id"))


class RuleStepRun(Base):
    """One step of one run: its own effect key (the run's key and the step's uid), its status, and
    what it made (`external_id`), so a retry, a replay or a second worker never repeats a step
    that completed. `detail.sent`: the write-ahead mark of a create whose answer may be lost."""

    __tablename__ = "rule_step_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    run_id: Mapped[int] = mapped_column(BigId)
    step_uid: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(80))
    effect_key: Mapped[str] = mapped_column(String(220))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending waiting done skipped
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    wake_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # sent, attachments, completed links, reason
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (Index("ux_rule_step_runs_step", "run_id", "step_uid", unique=True),
                      Index("ux_rule_step_runs_effect", "installation_id", "effect_key", unique=True))


class RuleLink(Base):
    """A CRM object and what a step made for it elsewhere (deal 42 <-> task 1203 of a connector),
    so later steps can complete it and the run log can point to it."""

    __tablename__ = "rule_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    rule_id: Mapped[int] = mapped_column(BigId)
    run_id: Mapped[int] = mapped_column(BigId)
    step_uid: Mapped[str] = mapped_column(String(16), default="", server_default="")
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(100))
    connector: Mapped[str] = mapped_column(String(40))
    connection_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    made: Mapped[str] = mapped_column(String(20))  # task | project | record
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(1024), default="")
    url: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(20), default="open", server_default="open")  # open | completed
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ux_rule_links_step", "run_id", "step_uid", unique=True),
                      Index("ix_rule_links_object", "installation_id", "object_type", "object_id"))


# -- sign-in links (hub accounts for CRMs without OAuth) ---------------------------------------------
class SignInLink(Base):
    """A one-time sign-in link e-mailed to a member of an installation. Only the SHA-256 of the token
    is kept, so a database leak yields no usable link; `used_at` makes it single-use."""

    __tablename__ = "sign_in_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    crm_user_id: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(String(20), default="login")    # login | invite
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (Index("ix_sign_in_links_email", "email", "created_at"),)


# -- linked tasks: status mirror and closing settings (hub/tasks) -----------------------------------


class TaskStatus(Base):
    """The last known state of a task a rule step linked to a CRM record (one row per `RuleLink`),
    from the CRM's task events, the hub's own steps and the scheduled check: what the board shows."""

    __tablename__ = "task_statuses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    link_id: Mapped[int] = mapped_column(BigId)
    installation_id: Mapped[int] = mapped_column(BigId)
    connector: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(30), default="open")          # contract TASK_STATUSES
    deadline: Mapped[str] = mapped_column(String(32), default="", server_default="")   # ISO date or datetime
    due_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # when it becomes overdue (UTC)
    status_changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    responsible: Mapped[str] = mapped_column(String(200), default="", server_default="")
    detail: Mapped[str] = mapped_column(String(500), default="", server_default="")
    gone: Mapped[bool] = mapped_column(default=False, server_default=false())     # deleted / no access: not re-read
    checked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ux_task_statuses_link", "link_id", unique=True),
                      Index("ix_task_statuses_task", "installation_id", "connector", "external_id"),
                      Index("ix_task_statuses_object", "installation_id", "object_type", "object_id"))


class TaskSettings(Base):
    """Per installation: whether closing a deal (won / lost) or a lead (converted / closed)
    completes its open linked tasks. No row: both on."""

    __tablename__ = "task_settings"

    installation_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    close_deal_tasks: Mapped[bool] = mapped_column(default=True, server_default=true())
    close_lead_tasks: Mapped[bool] = mapped_column(default=True, server_default=true())
    updated_by: Mapped[str] = mapped_column(String(300), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # task templates (migration 0015_templates_tasks): the account's time zone (deadlines are computed
    # in it), the default sharing of tasks between colleagues (a task type may override it), statuses
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    sharing: Mapped[str] = mapped_column(String(20), default="free_busy", server_default="free_busy")
    statuses_enabled: Mapped[bool] = mapped_column(default=False, server_default=false())


# -- leads: per-object automation state --------------------------------------------------------------
class ObjectFlag(Base):
    """State an automation keeps about one CRM object (`auto_advance` off for a lead a person moved
    back), with who set it, why and when: one generic table, whatever the CRM (hub/events/flags.py)."""

    __tablename__ = "object_flags"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    connector: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(60))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    set_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    set_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ux_object_flags", "installation_id", "connector", "object_type", "object_id", "key",
                            unique=True),)


# --- task templates, post-sale sets, next-task suggestions, task types and sharing (hub/tasks) ---
# (in their own module, which needs `Base` from here, so that this module stays readable)
from .models_tasks import (HubTask, NextTaskRule, PostSaleSet, TaskStatusOption,  # noqa: E402,F401
                           TaskSuggestion, TaskTemplate, TaskTemplateSet, TaskType)

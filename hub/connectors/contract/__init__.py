"""The connector contract: what a provider's folder gives the core, and nothing more.

`hub/connectors/<p>/__init__.py` exports one `CONNECTOR` (a `Connector`). The core reads only that:
config sections, the sandbox's list, the install and connect pages, the rule editor's triggers,
steps and dropdowns, webhook routing and the sync's two sides are all derived from it. A connector
imports the contract, `hub.connectors.base` (the shared `ApiClient`), `hub.connectors.retry`,
`hub.connectors.ids` and `hub.errors`; never the core (`hub.oauth`, `hub.rules`, ...) and never
another connector.

Each part lives in its own module so it can be read alone:
- `auth`      OAuth2 (with small hooks for provider quirks) or ApiKey (key + secret, per-request signing)
- `webhooks`  routing, verification on the raw request, splitting, handshakes, subscriptions,
              normalization to `CrmEvent`, polling for reconciliation
- `records`   `CrmSource`: one neutral `SourceRecord` per CRM object; catalog loaders for dropdowns
- `targets`   `TaskTarget` and the step kinds a connector offers (create a task, a project, ...)
- `triggers`  the event kinds a connector emits and its ready-made automations (presets)
- `contacts`  `ContactSource` / `ContactStore` for the two-way contact sync
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

# Roles a connector may declare; a CRM is usually several (a source of events and a task target).
ROLES = frozenset({"crm", "task_target", "project_target", "contact_source", "contact_store"})


@dataclass(frozen=True)
class Connector:
    name: str                                   # folder name, URL segment, config section
    title: str                                  # what people read
    roles: frozenset[str]                       # subset of ROLES
    auth: Any                                   # contract.auth.OAuth2 | contract.auth.ApiKey
    client: Callable[..., Any] | None = None    # (api_base, token_source, **options) -> ApiClient subclass
    identity: Callable[..., Any] | None = None  # (client, token_response) -> contract.auth.Identity
    webhooks: Any = None                        # contract.webhooks.Webhooks (crm)
    source: Any = None                          # contract.records.CrmSource factory (crm)
    catalogs: Mapping[str, Any] = field(default_factory=dict)   # name -> contract.records.Catalog
    targets: Mapping[str, Any] = field(default_factory=dict)    # step kind -> contract.targets.StepKind
    triggers: tuple = ()                        # contract.triggers.Trigger, the kinds it emits
    presets: tuple = ()                         # contract.triggers.Preset, ready-made rules
    contacts: Any = None                        # contract.contacts.ContactSource / ContactStore factory
    settings: Mapping[str, Any] = field(default_factory=dict)   # its config section's defaults
    ids: Any = None                             # its ids module (hub.connectors.<p>.ids)

    def __post_init__(self):
        unknown = set(self.roles) - ROLES
        if unknown:
            raise ValueError(f"connector {self.name}: unknown roles {sorted(unknown)}")

    def has(self, role: str) -> bool:
        return role in self.roles

"""Post-sale sets run through the rule engine: one hub-managed rule per outcome ("deal.won",
"deal.lost") whose single step applies the post-sale set of the deal's sales process. So a deal
won once runs once (the engine's run per occurrence: a redelivered webhook adds nothing), each
task has its own effect key, and a deal in a process with no set says so in the run log.

The rules exist while at least one post-sale set of that outcome exists (made or re-activated
when a set is configured, deactivated when the last one goes); their preset says they are the
hub's own, so the settings page manages them."""
from __future__ import annotations

from sqlalchemy import select

from ..store import utcnow
from ..store.models import PostSaleSet, Rule, RuleStep

PRESET = "post_sale_sets"
NAMES = {"won": "Post-sale tasks: won deals", "lost": "Post-sale tasks: lost deals"}


def ensure_rules(session, installation_id: int) -> None:
    wanted = {o for o in session.scalars(select(PostSaleSet.outcome).where(
        PostSaleSet.installation_id == installation_id))}
    for outcome, name in NAMES.items():
        rule = session.scalar(select(Rule).where(Rule.installation_id == installation_id, Rule.preset == PRESET,
                                                 Rule.trigger == f"deal.{outcome}"))
        if rule is None:
            if outcome not in wanted:
                continue
            now = utcnow()
            rule = Rule(installation_id=installation_id, name=name, status="active", preset=PRESET,
                        trigger=f"deal.{outcome}", fires="every", conditions=[], version=1, created_by="",
                        created_at=now, updated_at=now, activated_at=now)
            session.add(rule)
            session.flush()
            session.add(RuleStep(rule_id=rule.id, position=0, uid="postsale", kind="templates",
                                 settings={"post_sale": outcome}, templates={}, carry={}, mappings=[],
                                 condition=None, delay_seconds=0, due_in_days=None))
            continue
        status = "active" if outcome in wanted else "draft"
        if rule.status != status:
            rule.status, rule.updated_at = status, utcnow()
            rule.version += 1
            if status == "active":
                rule.activated_at = utcnow()

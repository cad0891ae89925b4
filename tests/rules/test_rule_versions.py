"""Matching reads an installation's active rules once per process while they stay as they were: on
PostgreSQL the webhook job's first statement returns their ids and row versions, and the rows this
process read for that list are reused. Every change matching sees must still be seen at once."""
from __future__ import annotations

from sqlalchemy import event

from hub.rules import service
from tests.web.conftest import ADMIN

_READ = "FROM rules JOIN installations"


def test_matching_reads_the_rules_again_exactly_when_they_changed(make_env, db_url):
    env = make_env(db_url)
    postgres = db_url.startswith("postgresql")
    rule = env.rule(name_template="Won: {{ deal.title }}", description_template="",
                    carry={"value": False, "contacts": False, "notes": False, "attachments": False})
    sales = env.pipeline("Sales")
    seen: list[str] = []

    def won(title: str) -> int:
        """A new deal of Sales, won; how many times matching read the rules for its two webhooks."""
        seen.clear()
        deal = env.pd.create_deal(title, pipeline_id=int(sales))
        env.settle()
        env.pd.mark_won(deal["id"])
        env.settle()
        return sum(_READ in statement for statement in seen)

    event.listen(env.services.db.engine, "before_cursor_execute", lambda c, cur, sql, *a: seen.append(sql))
    reads = [won("A"), won("B")]
    # moved to another pipeline: Sales deals no longer match
    service.update(env.services, env.iid, rule["id"], {"pipeline_id": env.pipeline("Renewals")}, str(ADMIN))
    reads.append(won("C"))
    service.update(env.services, env.iid, rule["id"], {"pipeline_id": sales}, str(ADMIN))
    reads.append(won("D"))
    service.set_status(env.services, env.iid, rule["id"], "draft", str(ADMIN))
    reads.append(won("E"))
    other = env.rule(name="another", name_template="Also: {{ deal.title }}", description_template="",
                     carry={"value": False, "contacts": False, "notes": False, "attachments": False})
    reads.append(won("F"))
    service.remove(env.services, env.iid, other["id"], str(ADMIN))
    reads.append(won("G"))

    assert sorted(t["name"] for t in env.tasks()) == ["Also: F", "Won: A", "Won: B", "Won: D"]
    # SQLite reads them for each webhook; PostgreSQL once after each change (G: no active rule, as for E)
    assert reads == ([1, 0, 1, 1, 1, 1, 0] if postgres else [2] * 7)

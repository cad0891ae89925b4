"""The demo portal: people, the General funnel plus a second one, deals at several stages, leads,
a contact and a company, and tasks linked to a deal and a lead (one under control on completion)."""
from __future__ import annotations

from .util import iso

DAY = 86400


def seed(sb, name: str = "demo", title: str | None = None, domain: str | None = None, plan: str = "basic") -> None:
    sb.add_portal(name, title=title or "Relay Demo", domain=domain, plan=plan)
    admin = int(sb.add_user(name, "Anna", "Admin", "anna@demo.test", admin=True, position="Head of sales")["ID"])
    bob = int(sb.add_user(name, "Bob", "Seller", "bob@demo.test", position="Account manager")["ID"])
    cleo = int(sb.add_user(name, "Cleo", "Support", "cleo@demo.test", position="Onboarding")["ID"])
    sb.add_category(name, "General", category_id=0)
    sb.add_category(name, "Renewals", stages=(("NEW", "To renew", "P", "#39A8EF"),
                                             ("NEGOTIATION", "Negotiation", "P", "#FFA900"),
                                             ("WON", "Renewed", "S", "#7BD500"), ("LOSE", "Churned", "F", "#FF5752")))
    sb.add_lead_statuses(name)
    company = sb.create_company(name, {"TITLE": "Acme Corp"}, actor=admin)
    contact = sb.create_contact(name, {"NAME": "Dora", "LAST_NAME": "Buyer", "EMAIL": "dora@acme.test",
                                       "COMPANY_ID": company["ID"]}, actor=admin)
    d1 = sb.create_deal(name, {"TITLE": "Acme rollout", "OPPORTUNITY": 12000, "CURRENCY_ID": "EUR",
                               "ASSIGNED_BY_ID": bob, "CONTACT_ID": contact["ID"], "COMPANY_ID": company["ID"]},
                        actor=admin)
    sb.create_deal(name, {"TITLE": "Globex pilot", "OPPORTUNITY": 4500, "CURRENCY_ID": "EUR", "STAGE_ID": "PREPARATION",
                          "ASSIGNED_BY_ID": bob}, actor=admin)
    sb.create_deal(name, {"TITLE": "Initech support", "OPPORTUNITY": 800, "CURRENCY_ID": "EUR",
                          "STAGE_ID": "EXECUTING", "ASSIGNED_BY_ID": admin}, actor=admin)
    sb.create_deal(name, {"TITLE": "Umbrella renewal", "OPPORTUNITY": 3000, "CURRENCY_ID": "EUR", "CATEGORY_ID": 1,
                          "ASSIGNED_BY_ID": cleo}, actor=admin)
    lead = sb.create_lead(name, {"TITLE": "Website enquiry: Hooli", "NAME": "Gavin", "LAST_NAME": "Belson",
                                 "EMAIL": "gavin@hooli.test", "OPPORTUNITY": 2500, "CURRENCY_ID": "EUR",
                                 "ASSIGNED_BY_ID": bob}, actor=admin)
    now = sb.now()
    sb.create_task(name, {"TITLE": "Send the rollout contract", "RESPONSIBLE_ID": bob, "CREATED_BY": admin,
                          "DEADLINE": iso(now + 3 * DAY), "PRIORITY": 2, "TASK_CONTROL": "Y",
                          "UF_CRM_TASK": [f"D_{d1['ID']}"], "AUDITORS": [cleo]}, actor=admin)
    sb.create_task(name, {"TITLE": "Call Gavin back", "RESPONSIBLE_ID": bob, "CREATED_BY": admin,
                          "DEADLINE": iso(now + DAY // 2), "UF_CRM_TASK": [f"L_{lead['ID']}"]}, actor=admin)


"""The demo accounts a fresh sandbox starts with: two owners, contacts at several lifecycle stages,
a company whose stage syncs down to its contacts, deals in both deal pipelines, an open lead and a task.
A second, smaller account shows deliveries that mix portals."""
from __future__ import annotations

from .emulator import Source

IMPORT = Source("import", None, None)


def _assoc(type_id: int, *ids) -> list[dict]:
    return [{"to": {"id": str(i)}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}
            for i in ids]


def seed(sb) -> None:
    portal = sb.add_portal("Northwind Demo", domain="northwind-demo.com")
    hub = portal["hub_id"]
    ada = sb.add_user(hub, "ada@northwind-demo.com", "Ada", "Admin", admin=True)
    sam = sb.add_user(hub, "sam@northwind-demo.com", "Sam", "Seller")
    company = sb.create(hub, "companies", {"name": "Northwind Traders", "domain": "northwind.example",
                                           "city": "Lisbon", "lifecyclestage": "lead",
                                           "hubspot_owner_id": str(ada["ownerId"])}, source=IMPORT)
    people = [("Maria", "Anders", "subscriber", sam), ("Ana", "Trujillo", "lead", sam),
              ("Thomas", "Hardy", "marketingqualifiedlead", ada), ("Christina", "Berglund", "lead", sam),
              ("Hanna", "Moos", "opportunity", ada)]
    contacts = []
    for n, (first, last, stage, owner) in enumerate(people):
        links = _assoc(1, company["id"]) if n < 3 else None
        contacts.append(sb.create(hub, "contacts", {
            "firstname": first, "lastname": last, "email": f"{first.lower()}.{last.lower()}@example.com",
            "lifecyclestage": stage, "hubspot_owner_id": str(owner["ownerId"]),
            "company": "Northwind Traders" if n < 3 else ""}, links, source=IMPORT))
    for title, stage, amount, pipeline, c in [("Northwind renewal 2026", "1001", "12000", "95001", 4),
                                              ("Northwind web shop", "qualifiedtobuy", "4800", "default", 0),
                                              ("Berglund consulting", "appointmentscheduled", "1500", "default", 3)]:
        sb.create(hub, "deals", {"dealname": title, "dealstage": stage, "pipeline": pipeline, "amount": amount,
                                 "hubspot_owner_id": str(ada["ownerId"])},
                  _assoc(3, contacts[c]["id"]) + _assoc(5, company["id"]), source=IMPORT)
    lead = sb.create(hub, "leads", {"hs_lead_name": "Thomas Hardy - new business", "hs_lead_type": "NEW_BUSINESS",
                                    "hs_pipeline": "lead-pipeline-id", "hs_pipeline_stage": "attempting-stage-id",
                                    "hubspot_owner_id": str(ada["ownerId"])},
                     _assoc(578, contacts[2]["id"]), source=IMPORT)
    sb.create(hub, "tasks", {"hs_timestamp": str(int((sb.now() + 86400) * 1000)), "hs_task_subject": "Call Thomas",
                             "hs_task_body": "Ask about the budget.", "hs_task_type": "CALL",
                             "hs_task_priority": "HIGH", "hubspot_owner_id": str(ada["ownerId"])},
              _assoc(204, contacts[2]["id"]) + _assoc(647, lead["id"]), source=IMPORT)

    other = sb.add_portal("Contoso Sandbox", domain="contoso-sandbox.com")
    hub2 = other["hub_id"]
    zoe = sb.add_user(hub2, "zoe@contoso-sandbox.com", "Zoe", "Zhang", admin=True)
    sb.create(hub2, "contacts", {"firstname": "Liu", "lastname": "Wong", "email": "liu.wong@example.com",
                                 "lifecyclestage": "lead", "hubspot_owner_id": str(zoe["ownerId"])}, source=IMPORT)

"""Demo data for an empty sandbox: the company "Acme Sandbox" and a small, believable pipeline.

Everything is created through the emulator's own methods (no webhooks exist yet, so nothing fires)
so seeded records have exactly the shape of records made later through the API or the UI."""
from __future__ import annotations

from .util import field_hash

COMPANY_ID = 7004211
USERS = [  # (name, email, admin)
    ("Ada Admin", "ada.admin@acme-sandbox.example", True),
    ("Ben Seller", "ben.seller@acme-sandbox.example", False),
    ("Cleo Closer", "cleo.closer@acme-sandbox.example", False),
    ("Dev Ops", "dev.ops@acme-sandbox.example", False),
]
PIPELINES = [("Sales", ["Qualified", "Contact made", "Proposal made", "Negotiations started"]),
             ("Renewals", ["Upcoming", "In talks", "Signed off"])]
DEAL_STANDARD_FIELDS = [("Title", "title", "varchar"), ("Value", "value", "monetary"),
                        ("Currency", "currency", "varchar_options"), ("Person", "person_id", "people"),
                        ("Organization", "org_id", "org"), ("Pipeline", "pipeline_id", "int"),
                        ("Stage", "stage_id", "stage"), ("Status", "status", "status"),
                        ("Owner", "owner_id", "user"), ("Expected close date", "expected_close_date", "date"),
                        ("Lost reason", "lost_reason", "varchar_options"), ("Visible to", "visible_to", "visible_to")]
PERSON_STANDARD_FIELDS = [("Name", "name", "varchar"), ("Organization", "org_id", "org"),
                          ("Email", "emails", "varchar"), ("Phone", "phones", "phone"),
                          ("Owner", "owner_id", "user"), ("Visible to", "visible_to", "visible_to")]


def _fields(sb, entity: str, standard, custom) -> None:
    with sb.state.change() as data:
        out = []
        for name, key, kind in standard:
            out.append({"id": sb.state.next_id(f"{entity}_field"), "name": name, "key": key, "field_type": kind,
                        "options": None, "is_custom_field": False})
        for name, kind, options in custom:
            opts = None
            if options:
                opts = [{"id": sb.state.next_id("field_option", 30), "label": label} for label in options]
            out.append({"id": sb.state.next_id(f"{entity}_field"), "name": name,
                        "key": field_hash(COMPANY_ID, entity, name), "field_type": kind, "options": opts,
                        "is_custom_field": True})
        data["pd_fields"][entity] = out


def seed(sb) -> None:
    now = sb.now()
    with sb.state.change() as data:
        user_ids = []
        for i, (name, email, admin) in enumerate(USERS):
            uid = sb.state.next_id("user", 12400001)
            user_ids.append(uid)
            data["pd_users"][str(uid)] = {"id": uid, "name": name, "email": email, "is_admin": admin,
                                         "permission_set_id": "a1b2c3d4-0000-4000-8000-00000000000" + str(i),
                                         "created": now - 86400 * 400, "has_created_company": i == 0,
                                         "role_id": 1, "default_currency": "EUR"}
        data["pd_company"] = {"id": COMPANY_ID, "name": "Acme Sandbox", "domain": "acme-sandbox",
                              "admin_id": user_ids[0], "country": "DE", "industry": "Software"}
        for p_order, (pname, stages) in enumerate(PIPELINES, 1):
            pid = sb.state.next_id("pipeline")
            data["pd_pipelines"][str(pid)] = {"id": pid, "name": pname, "order_nr": p_order,
                                              "add_time": now - 86400 * 300, "update_time": now - 86400 * 300}
            for s_order, sname in enumerate(stages, 1):
                sid = sb.state.next_id("stage")
                data["pd_stages"][str(sid)] = {"id": sid, "name": sname, "order_nr": s_order, "pipeline_id": pid,
                                               "deal_probability": min(100, 20 * s_order),
                                               "days_to_rotten": 30 if s_order == 1 else None,
                                               "add_time": now - 86400 * 300, "update_time": now - 86400 * 300}
    _fields(sb, "deal", DEAL_STANDARD_FIELDS, [("Contract number", "varchar", None),
                                               ("Tier", "enum", ["Bronze", "Silver", "Gold"]),
                                               ("Seats", "double", None),
                                               ("Modules", "set", ["CRM", "Projects", "Campaigns"])])
    _fields(sb, "person", PERSON_STANDARD_FIELDS, [("Preferred language", "varchar", None)])
    admin, ben, cleo, _ = user_ids
    nord = sb.create_org("Nordwind GmbH", owner_id=ben, address="Hafenstrasse 12, Hamburg", actor=admin)
    lumo = sb.create_org("Lumo Oy", owner_id=cleo, address="Mannerheimintie 5, Helsinki", actor=admin)
    parnu = sb.create_org("Parnu Logistics", owner_id=admin, actor=admin)
    katrin = sb.create_person("Katrin Vogel", org_id=nord["id"], owner_id=ben, actor=admin,
                              emails=[{"value": "katrin.vogel@nordwind.example", "label": "work", "primary": True},
                                      {"value": "k.vogel@mail.example", "label": "home"}],
                              phones=[{"value": "+49 40 5550 1234", "label": "work", "primary": True},
                                      {"value": "+49 170 5550 987", "label": "mobile"}])
    aino = sb.create_person("Aino Laine", org_id=lumo["id"], owner_id=cleo, actor=admin,
                            emails=["aino.laine@lumo.example"], phones=["+358 40 555 0101"])
    tonis = sb.create_person("Tonis Kask", org_id=parnu["id"], owner_id=admin, actor=admin,
                             emails=[{"value": "tonis@parnu-logistics.example", "label": "work"},
                                     {"value": "tonis.kask@mail.example", "label": "other"}])
    deal_fields = {f["name"]: f for f in sb.fields("deal")}
    tier = deal_fields["Tier"]
    stages = sorted(sb.data["pd_stages"].values(), key=lambda s: s["id"])
    big = sb.create_deal("Nordwind GmbH - 40 seats renewal", stage_id=stages[1]["id"], value=18400,
                         person_id=katrin["id"], org_id=nord["id"], owner_id=ben, actor=admin,
                         expected_close_date="2026-12-15",
                         custom_fields={deal_fields["Contract number"]["key"]: "NW-2026-118",
                                        tier["key"]: tier["options"][2]["id"], deal_fields["Seats"]["key"]: 40,
                                        deal_fields["Modules"]["key"]: [deal_fields["Modules"]["options"][0]["id"]]})
    sb.create_deal("Lumo Oy - pilot for support team", stage_id=stages[0]["id"], value=6500,
                   person_id=aino["id"], org_id=lumo["id"], owner_id=cleo, actor=admin)
    sb.create_deal("Parnu Logistics - fleet tracking", stage_id=stages[2]["id"], value=9100,
                   person_id=tonis["id"], org_id=parnu["id"], owner_id=admin, actor=admin)
    sb.create_deal("Nordwind GmbH - support plan", stage_id=stages[5]["id"], value=2400, currency="EUR",
                   org_id=nord["id"], owner_id=ben, actor=admin)
    won = sb.create_deal("Lumo Oy - onboarding package", stage_id=stages[3]["id"], value=3000,
                         org_id=lumo["id"], person_id=aino["id"], owner_id=cleo, actor=admin)
    sb.mark_won(won["id"], actor=cleo)
    lost = sb.create_deal("Parnu Logistics - warehouse add-on", stage_id=stages[1]["id"], value=1200,
                          org_id=parnu["id"], owner_id=admin, actor=admin)
    sb.mark_lost(lost["id"], "Went with a competitor", actor=admin)
    sb.add_note("<p>Procurement wants the <b>Gold</b> tier, decision in December.</p>", deal_id=big["id"],
                pinned_to_deal=True, actor=ben)
    sb.add_note("Call notes: renewal depends on SSO support.", deal_id=big["id"], actor=ben)
    sb.attach_file(big["id"], "nordwind-quote.pdf", b"%PDF-1.4\n% Acme Sandbox quote NW-2026-118\n", actor=ben)
    sb.add_lead("Inbound: Parnu Logistics - 25 seats", person_id=tonis["id"], organization_id=parnu["id"],
                amount=9000, currency="EUR", owner_id=cleo, actor=admin)

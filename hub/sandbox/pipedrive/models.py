"""Record -> wire shape, per surface: API v1, API v2 and webhook v2 `data`.

State keeps one internal record per object; these functions render it the way each Pipedrive
surface shows it (v1 flat custom fields and `YYYY-MM-DD HH:MM:SS`, v2 `custom_fields` and RFC 3339,
webhook `data` with typed custom-field objects and `visible_to` as a string)."""
from __future__ import annotations

from typing import Any

from .util import ms_time, v1_time, v2_time

# -- users ------------------------------------------------------------------------------------------

def user_v1(u: dict, me_id: int | None) -> dict:
    access = [{"app": "sales", "admin": u["is_admin"], "permission_set_id": u["permission_set_id"]}]
    if u["is_admin"]:
        access.insert(0, {"app": "global", "admin": True, "permission_set_id": u["permission_set_id"]})
    return {
        "id": u["id"], "name": u["name"], "default_currency": u.get("default_currency", "EUR"),
        "locale": u.get("locale", "en_US"), "lang": 1, "email": u["email"], "phone": u.get("phone"),
        "activated": True, "last_login": v1_time(u.get("last_login", u["created"])),
        "created": v1_time(u["created"]), "modified": v1_time(u.get("modified")),
        "has_created_company": u.get("has_created_company", False), "access": access,
        "active_flag": u.get("active_flag", True), "timezone_name": u.get("timezone_name", "Europe/Berlin"),
        "timezone_offset": u.get("timezone_offset", "+01:00"), "role_id": u.get("role_id", 1),
        "icon_url": None, "is_you": u["id"] == me_id, "is_deleted": False,
    }


def me_v1(u: dict, company: dict) -> dict:
    out = user_v1(u, u["id"])
    out.update({"company_id": company["id"], "company_name": company["name"],
                "company_domain": company["domain"], "company_country": company.get("country", "DE"),
                "company_industry": company.get("industry", "Software"),
                "language": {"language_code": "en", "country_code": "US"}})
    return out


# -- pipelines / stages -----------------------------------------------------------------------------

def pipeline_v2(p: dict) -> dict:
    return {"id": p["id"], "name": p["name"], "order_nr": p["order_nr"], "is_deleted": False,
            "is_deal_probability_enabled": p.get("is_deal_probability_enabled", False),
            "add_time": v2_time(p["add_time"]), "update_time": v2_time(p["update_time"])}


def stage_v2(s: dict) -> dict:
    return {"id": s["id"], "order_nr": s["order_nr"], "name": s["name"], "is_deleted": False,
            "deal_probability": s.get("deal_probability", 100), "pipeline_id": s["pipeline_id"],
            "is_deal_rot_enabled": s.get("days_to_rotten") is not None, "days_to_rotten": s.get("days_to_rotten"),
            "add_time": v2_time(s["add_time"]), "update_time": v2_time(s["update_time"])}


# -- custom fields ----------------------------------------------------------------------------------

def field_v2(f: dict) -> dict:
    return {"field_name": f["name"], "field_code": f["key"], "field_type": f["field_type"],
            "options": [{"id": o["id"], "label": o["label"], "color": None, "add_time": None, "update_time": None}
                        for o in f["options"]] if f.get("options") is not None else None,
            "subfields": None, "is_custom_field": f["is_custom_field"], "is_optional_response_field": False}


def custom_v2(fields: list[dict], values: dict) -> dict:
    """API v2: every custom field of the entity, null when unset."""
    return {f["key"]: values.get(f["key"]) for f in fields if f["is_custom_field"]}


def custom_hook_value(field_type: str, value: Any) -> dict | None:
    """Webhook v2 form of one custom-field value (FACTS §13, webhook column)."""
    if value is None:
        return None
    if field_type == "monetary":
        return {"type": "monetary", "value": value.get("value"), "currency": value.get("currency")}
    if field_type == "enum":
        return {"type": "enum", "id": value}
    if field_type == "set":
        return {"type": "set", "values": [{"id": v} for v in value]}
    if field_type in ("people", "org", "user"):
        return {"type": field_type, "id": value}
    if field_type == "daterange":
        return {"type": "daterange", "from": value.get("value"), "until": value.get("until")}
    return {"type": field_type, "value": value}


def custom_hook(fields: list[dict], values: dict) -> dict:
    types = {f["key"]: f["field_type"] for f in fields if f["is_custom_field"]}
    return {k: custom_hook_value(types[k], v) for k, v in values.items() if k in types and v is not None}


def custom_v1_flat(fields: list[dict], values: dict) -> dict:
    """API v1 (leads): flat `<hash>` keys, unset fields omitted."""
    out: dict[str, Any] = {}
    for f in fields:
        if not f["is_custom_field"] or values.get(f["key"]) is None:
            continue
        key, value, kind = f["key"], values[f["key"]], f["field_type"]
        if kind == "monetary":
            out[key], out[key + "_currency"] = value.get("value"), value.get("currency")
        elif kind == "enum":
            out[key] = str(value)
        elif kind == "set":
            out[key] = ",".join(str(v) for v in value)
        elif kind == "daterange":
            out[key], out[key + "_until"] = value.get("value"), value.get("until")
        else:
            out[key] = value
    return out


# -- deals ------------------------------------------------------------------------------------------

def deal_v2(d: dict, fields: list[dict], include: set[str] = frozenset()) -> dict:
    out = {
        "id": d["id"], "title": d["title"], "owner_id": d["owner_id"], "person_id": d["person_id"],
        "org_id": d["org_id"], "pipeline_id": d["pipeline_id"], "stage_id": d["stage_id"],
        "value": d["value"], "currency": d["currency"], "add_time": v2_time(d["add_time"]),
        "update_time": v2_time(d["update_time"]), "stage_change_time": v2_time(d["stage_change_time"]),
        "is_deleted": d["is_deleted"], "is_archived": d.get("is_archived", False), "status": d["status"],
        "probability": d.get("probability"), "lost_reason": d.get("lost_reason"),
        "visible_to": d.get("visible_to", 3), "close_time": v2_time(d.get("close_time")),
        "won_time": v2_time(d.get("won_time")), "lost_time": v2_time(d.get("lost_time")),
        "expected_close_date": d.get("expected_close_date"), "label_ids": list(d.get("label_ids", [])),
        "origin": d.get("origin", "ManuallyCreated"), "origin_id": d.get("origin_id"),
        "channel": d.get("channel"), "channel_id": d.get("channel_id"),
        "source_lead_id": d.get("source_lead_id"), "arr": None, "mrr": None, "acv": None,
        "custom_fields": custom_v2(fields, d.get("custom_fields", {})),
    }
    if "first_won_time" in include:
        out["first_won_time"] = v2_time(d.get("first_won_time"))
    return out


def deal_hook(d: dict, fields: list[dict]) -> dict:
    return {
        "add_time": v2_time(d["add_time"]), "channel": d.get("channel"), "channel_id": d.get("channel_id"),
        "close_time": v2_time(d.get("close_time")), "creator_user_id": d["creator_user_id"],
        "currency": d["currency"], "custom_fields": custom_hook(fields, d.get("custom_fields", {})),
        "expected_close_date": d.get("expected_close_date"), "first_won_time": v2_time(d.get("first_won_time")),
        "id": d["id"], "label_ids": list(d.get("label_ids", [])), "lost_reason": d.get("lost_reason"),
        "lost_time": v2_time(d.get("lost_time")), "org_id": d["org_id"], "origin": d.get("origin", "ManuallyCreated"),
        "origin_id": d.get("origin_id"), "owner_id": d["owner_id"], "person_id": d["person_id"],
        "pipeline_id": d["pipeline_id"], "probability": d.get("probability"),
        "stage_change_time": v2_time(d["stage_change_time"]), "stage_id": d["stage_id"], "status": d["status"],
        "title": d["title"], "update_time": v2_time(d["update_time"]), "value": d["value"],
        "visible_to": str(d.get("visible_to", 3)), "won_time": v2_time(d.get("won_time")),
    }


# -- persons / organizations ------------------------------------------------------------------------

def person_v2(p: dict, fields: list[dict]) -> dict:
    return {
        "id": p["id"], "name": p["name"], "first_name": p.get("first_name"), "last_name": p.get("last_name"),
        "owner_id": p["owner_id"], "org_id": p.get("org_id"), "add_time": v2_time(p["add_time"]),
        "update_time": v2_time(p["update_time"]), "emails": [dict(e) for e in p.get("emails", [])],
        "phones": [dict(e) for e in p.get("phones", [])], "is_deleted": p.get("is_deleted", False),
        "visible_to": p.get("visible_to", 3), "label_ids": list(p.get("label_ids", [])),
        "picture_id": None, "custom_fields": custom_v2(fields, p.get("custom_fields", {})),
    }


def person_hook(p: dict, fields: list[dict]) -> dict:
    return {
        "add_time": v2_time(p["add_time"]), "custom_fields": custom_hook(fields, p.get("custom_fields", {})),
        "emails": [dict(e) for e in p.get("emails", [])], "first_name": p.get("first_name"), "id": p["id"],
        "label": None, "last_name": p.get("last_name"), "name": p["name"], "org_id": p.get("org_id"),
        "owner_id": p["owner_id"], "phones": [dict(e) for e in p.get("phones", [])],
        "update_time": v2_time(p["update_time"]), "visible_to": str(p.get("visible_to", 3)),
    }


def org_v2(o: dict) -> dict:
    return {
        "id": o["id"], "name": o["name"], "owner_id": o["owner_id"], "add_time": v2_time(o["add_time"]),
        "update_time": v2_time(o["update_time"]), "is_deleted": False, "visible_to": o.get("visible_to", 3),
        "address": o.get("address"), "label_ids": [], "website": o.get("website"), "linkedin": None,
        "industry": None, "annual_revenue": None, "employee_count": None, "custom_fields": {},
    }


# -- leads ------------------------------------------------------------------------------------------

def lead_v1(l: dict, deal_fields: list[dict]) -> dict:
    out = {
        "id": l["id"], "title": l["title"], "owner_id": l["owner_id"], "creator_id": l["creator_id"],
        "label_ids": list(l.get("label_ids", [])), "person_id": l.get("person_id"),
        "organization_id": l.get("organization_id"), "source_name": l.get("source_name", "Manually created"),
        "origin": l.get("origin", "ManuallyCreated"), "origin_id": l.get("origin_id"), "channel": None,
        "channel_id": None, "source_deal_id": None, "is_archived": False, "was_seen": l.get("was_seen", False),
        "value": dict(l["value"]) if l.get("value") else None, "expected_close_date": l.get("expected_close_date"),
        "next_activity_id": None, "add_time": ms_time(l["add_time"]), "update_time": ms_time(l["update_time"]),
        "visible_to": str(l.get("visible_to", 3)), "cc_email": l.get("cc_email", ""),
    }
    out.update(custom_v1_flat(deal_fields, l.get("custom_fields", {})))
    return out


def lead_hook(l: dict, deal_fields: list[dict]) -> dict:
    return {
        "add_time": ms_time(l["add_time"]), "channel": None, "channel_id": None, "creator_id": l["creator_id"],
        "custom_fields": custom_hook(deal_fields, l.get("custom_fields", {})),
        "expected_close_date": l.get("expected_close_date"), "id": l["id"], "is_archived": False,
        "label_ids": list(l.get("label_ids", [])), "next_activity_id": None,
        "organization_id": l.get("organization_id"), "origin": l.get("origin", "ManuallyCreated"),
        "origin_id": l.get("origin_id"), "owner_id": l["owner_id"], "person_id": l.get("person_id"),
        "source_name": l.get("source_name", "Manually created"), "title": l["title"],
        "update_time": ms_time(l["update_time"]), "was_seen": l.get("was_seen", False),
        "value": dict(l["value"]) if l.get("value") else None,
    }


# -- notes / files ----------------------------------------------------------------------------------

def note_v1(n: dict, data: dict, me_id: int | None) -> dict:
    deal = data["pd_deals"].get(str(n.get("deal_id")))
    person = data["pd_persons"].get(str(n.get("person_id")))
    org = data["pd_orgs"].get(str(n.get("org_id")))
    user = data["pd_users"].get(str(n["user_id"]), {})
    return {
        "id": n["id"], "active_flag": True, "add_time": v1_time(n["add_time"]), "content": n["content"],
        "deal": {"title": deal["title"]} if deal else None, "lead_id": n.get("lead_id"),
        "deal_id": n.get("deal_id"), "last_update_user_id": n.get("last_update_user_id", n["user_id"]),
        "org_id": n.get("org_id"), "organization": {"name": org["name"]} if org else None,
        "person": {"name": person["name"]} if person else None, "person_id": n.get("person_id"),
        "pinned_to_deal_flag": bool(n.get("pinned_to_deal_flag")),
        "pinned_to_organization_flag": bool(n.get("pinned_to_organization_flag")),
        "pinned_to_person_flag": bool(n.get("pinned_to_person_flag")),
        "pinned_to_lead_flag": bool(n.get("pinned_to_lead_flag")),
        "update_time": v1_time(n["update_time"]),
        "user": {"email": user.get("email", ""), "icon_url": "", "is_you": n["user_id"] == me_id,
                 "name": user.get("name", "")},
        "user_id": n["user_id"],
    }


def file_v1(f: dict, data: dict, download_url: str) -> dict:
    deal = data["pd_deals"].get(str(f.get("deal_id")))
    person = data["pd_persons"].get(str(f.get("person_id")))
    org = data["pd_orgs"].get(str(f.get("org_id")))
    return {
        "id": f["id"], "user_id": f["user_id"], "deal_id": f.get("deal_id"), "person_id": f.get("person_id"),
        "org_id": f.get("org_id"), "product_id": None, "activity_id": None, "lead_id": f.get("lead_id"),
        "add_time": v1_time(f["add_time"]), "update_time": v1_time(f["update_time"]),
        "file_name": f["file_name"], "file_size": f["file_size"], "active_flag": True, "inline_flag": False,
        "remote_location": "s3", "remote_id": f["remote_id"], "cid": "", "s3_bucket": "",
        "mail_message_id": "", "mail_template_id": "", "deal_name": deal["title"] if deal else "",
        "person_name": person["name"] if person else "", "org_name": org["name"] if org else "",
        "product_name": "", "lead_name": "", "url": download_url, "name": f["name"],
        "file_type": f.get("file_type", "other"),
    }


# -- webhooks ---------------------------------------------------------------------------------------

def webhook_v1(w: dict) -> dict:
    return {
        "id": w["id"], "company_id": w["company_id"], "owner_id": w["owner_id"], "user_id": w["user_id"],
        "event_action": w["event_action"], "event_object": w["event_object"],
        "subscription_url": w["subscription_url"], "version": w["version"], "is_active": 1 if w["is_active"] else 0,
        "add_time": v2_time(w["add_time"]), "remove_time": v2_time(w.get("remove_time")), "type": w["type"],
        "http_auth_user": w.get("http_auth_user"), "http_auth_password": w.get("http_auth_password"),
        "remove_reason": w.get("remove_reason"), "last_delivery_time": v2_time(w.get("last_delivery_time")),
        "last_http_status": w.get("last_http_status"), "admin_id": w["admin_id"], "name": w["name"],
    }

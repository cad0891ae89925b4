"""CRM data: deal categories (funnels) with stages and their semantics, deals, leads, contacts, companies.

Stored as Bitrix24 returns them: UPPER keys, string values ("ID": "12", "OPPORTUNITY": "1000.00").
A stage's semantics decide a deal's state: P in progress, S won, F lost (STAGE_SEMANTIC_ID, CLOSED).
Leads: statuses NEW / IN_PROCESS / PROCESSED (P), CONVERTED (S), JUNK (F); `convert_lead` makes the
contact and the deal the way the CRM's conversion does."""
from __future__ import annotations

import copy
from typing import Any

from .util import RestError, iso, money, to_int, parse_time

DEFAULT_STAGES = (("NEW", "New", "P", "#39A8EF"), ("PREPARATION", "Document preparation", "P", "#2FC6F6"),
                  ("PREPAYMENT_INVOICE", "Prepayment invoice", "P", "#55D0E0"), ("EXECUTING", "In progress", "P", "#47E4C2"),
                  ("FINAL_INVOICE", "Final invoice", "P", "#FFA900"), ("WON", "Deal won", "S", "#7BD500"),
                  ("LOSE", "Deal lost", "F", "#FF5752"), ("APOLOGY", "Analysis of failure", "F", "#FF5752"))
LEAD_STATUSES = (("NEW", "Unassigned", "P"), ("IN_PROCESS", "In progress", "P"), ("PROCESSED", "Processed", "P"),
                 ("JUNK", "Junk lead", "F"), ("CONVERTED", "Good lead", "S"))
SEMANTICS = {"P": "process", "S": "success", "F": "failure"}
DEAL_FIELDS = {"TITLE": "string", "TYPE_ID": "string", "CATEGORY_ID": "integer", "STAGE_ID": "crm_status",
               "STAGE_SEMANTIC_ID": "string", "IS_NEW": "char", "PROBABILITY": "integer", "CURRENCY_ID": "crm_currency",
               "OPPORTUNITY": "double", "COMPANY_ID": "crm_company", "CONTACT_ID": "crm_contact", "BEGINDATE": "date",
               "CLOSEDATE": "date", "OPENED": "char", "CLOSED": "char", "COMMENTS": "string", "ASSIGNED_BY_ID": "user",
               "CREATED_BY_ID": "user", "MODIFY_BY_ID": "user", "DATE_CREATE": "datetime", "DATE_MODIFY": "datetime",
               "LEAD_ID": "crm_lead", "SOURCE_ID": "crm_status", "ORIGINATOR_ID": "string", "ORIGIN_ID": "string",
               "ID": "integer"}
READ_ONLY = {"ID", "STAGE_SEMANTIC_ID", "CLOSED", "DATE_CREATE", "DATE_MODIFY", "CREATED_BY_ID", "MODIFY_BY_ID",
             "IS_NEW", "CATEGORY_ID_LOCKED"}


class CrmMixin:
    # -- categories and stages --------------------------------------------------------------------
    def add_category(self, portal: str, name: str, stages=None, *, category_id: int | None = None) -> dict:
        """A deal funnel; category 0 ("General") has Bitrix24's default stage ids, others `C<id>:<ID>`."""
        with self.state.change():
            p = self.portal(portal)
            cid = category_id if category_id is not None else self.next_id(portal, "category")
            cat = {"id": cid, "name": name, "sort": 100 * (len(p["categories"]) + 1), "entityTypeId": 2,
                   "isDefault": "Y" if cid == 0 else "N", "originId": "", "originatorId": ""}
            p["categories"][str(cid)] = cat
            entity = "DEAL_STAGE" if cid == 0 else f"DEAL_STAGE_{cid}"
            for n, (status_id, sname, sem, color) in enumerate(stages or DEFAULT_STAGES, 1):
                self._add_status(p, entity, status_id if cid == 0 else f"C{cid}:{status_id}", sname, sem, color,
                                 n * 10, cid)
            return copy.deepcopy(cat)

    def _add_status(self, p: dict, entity: str, status_id: str, name: str, sem: str, color: str, sort: int,
                    category_id: int | None) -> None:
        p["statuses"].append({"ID": str(self.next_id(p["info"]["name"], "status", 100)), "ENTITY_ID": entity,
                              "STATUS_ID": status_id, "NAME": name, "NAME_INIT": name, "SORT": str(sort),
                              "SYSTEM": "Y" if sem != "P" or sort == 10 else "N",
                              "CATEGORY_ID": None if not category_id else str(category_id), "COLOR": color,
                              "SEMANTICS": None if sem == "P" else sem,
                              "EXTRA": {"SEMANTICS": SEMANTICS[sem], "COLOR": color}})

    def add_lead_statuses(self, portal: str) -> None:
        with self.state.change():
            p = self.portal(portal)
            for n, (sid, name, sem) in enumerate(LEAD_STATUSES, 1):
                self._add_status(p, "STATUS", sid, name, sem, "#39A8EF", n * 10, None)

    def categories(self, portal: str) -> list[dict]:
        with self.state.lock:
            return [copy.deepcopy(c) for c in sorted(self.portal(portal)["categories"].values(),
                                                     key=lambda c: (c["sort"], c["id"]))]

    def statuses(self, portal: str, entity: str | None = None) -> list[dict]:
        with self.state.lock:
            return [copy.deepcopy(s) for s in sorted(self.portal(portal)["statuses"], key=lambda s: int(s["SORT"]))
                    if entity is None or s["ENTITY_ID"] == entity]

    def stages(self, portal: str, category_id: int = 0) -> list[dict]:
        return self.statuses(portal, "DEAL_STAGE" if not category_id else f"DEAL_STAGE_{category_id}")

    def _status(self, p: dict, entity: str, status_id: str) -> dict | None:
        return next((s for s in p["statuses"] if s["ENTITY_ID"] == entity and s["STATUS_ID"] == status_id), None)

    @staticmethod
    def _sem(status: dict) -> str:
        return status["SEMANTICS"] or "P"

    # -- records ----------------------------------------------------------------------------------
    def _record(self, portal: str, table: str, record_id: Any, what: str) -> dict:
        """Call under the lock. CRM answers a missing record with HTTP 400 and an empty error code."""
        rec = self.portal(portal)[table].get(str(record_id).strip())
        if rec is None:
            raise RestError("", "Not found", 400)
        return rec

    def record(self, portal: str, table: str, record_id: Any) -> dict | None:
        with self.state.lock:
            rec = self.portal(portal)[table].get(str(record_id))
            return copy.deepcopy(rec) if rec else None

    def records(self, portal: str, table: str) -> list[dict]:
        with self.state.lock:
            return [copy.deepcopy(r) for r in sorted(self.portal(portal)[table].values(), key=lambda r: int(r["ID"]))]

    def _user_ref(self, p: dict, value: Any, field: str) -> str:
        uid = str(to_int(value, field))
        if uid not in p["users"]:
            raise RestError("", f"{field}: user {uid} not found", 400)
        return uid

    def _ref(self, p: dict, table: str, value: Any, field: str) -> str | None:
        if value in (None, "", "0", 0):
            return None
        rid = str(to_int(value, field))
        if rid not in p[table]:
            raise RestError("", f"{field}: {rid} not found", 400)
        return rid

    # -- deals ------------------------------------------------------------------------------------
    def create_deal(self, portal: str, fields: dict, *, actor: int | None = None, automation: bool = False) -> dict:
        if not isinstance(fields, dict):
            raise RestError("", "fields: expected an object", 400)
        with self.state.change():
            p = self.portal(portal)
            actor = actor or int(p["info"]["admin_id"])
            cid = to_int(fields.get("CATEGORY_ID") or 0, "CATEGORY_ID")
            if str(cid) not in p["categories"]:
                raise RestError("", f"CATEGORY_ID: category {cid} not found", 400)
            entity = "DEAL_STAGE" if not cid else f"DEAL_STAGE_{cid}"
            first = next(s for s in sorted(p["statuses"], key=lambda s: int(s["SORT"])) if s["ENTITY_ID"] == entity)
            now = iso(self.now())
            deal = {"ID": str(self.next_id(portal, "deal")), "TITLE": "", "TYPE_ID": "SALE", "CATEGORY_ID": str(cid),
                    "STAGE_ID": first["STATUS_ID"], "STAGE_SEMANTIC_ID": "P", "IS_NEW": "Y", "PROBABILITY": None,
                    "CURRENCY_ID": "USD", "OPPORTUNITY": "0.00", "IS_MANUAL_OPPORTUNITY": "N", "TAX_VALUE": "0.00",
                    "COMPANY_ID": "0", "CONTACT_ID": None, "QUOTE_ID": None, "BEGINDATE": now, "CLOSEDATE": None,
                    "OPENED": "Y", "CLOSED": "N", "COMMENTS": None, "ASSIGNED_BY_ID": str(actor),
                    "CREATED_BY_ID": str(actor), "MODIFY_BY_ID": str(actor), "DATE_CREATE": now, "DATE_MODIFY": now,
                    "MOVED_BY_ID": str(actor), "MOVED_TIME": now, "LEAD_ID": None, "SOURCE_ID": None,
                    "ORIGINATOR_ID": None, "ORIGIN_ID": None, "LAST_ACTIVITY_TIME": now}
            self._apply_deal(p, deal, fields, creating=True)
            if not deal["TITLE"]:
                deal["TITLE"] = f"Deal #{deal['ID']}"
            p["deals"][deal["ID"]] = deal
            result = copy.deepcopy(deal)
        self.emit(portal, "ONCRMDEALADD", {"FIELDS": {"ID": result["ID"]}}, user_id=actor, automation=automation,
                  object_id=result["ID"])
        return result

    def _apply_deal(self, p: dict, deal: dict, fields: dict, *, creating: bool) -> None:
        for key, value in fields.items():
            key = str(key).upper()
            if key in READ_ONLY or (key == "CATEGORY_ID" and not creating):
                continue   # Bitrix24 ignores them (a deal changes funnel via crm.deal.moveToCategory)
            if key == "TITLE":
                deal["TITLE"] = str(value or "")
            elif key == "STAGE_ID":
                entity = "DEAL_STAGE" if deal["CATEGORY_ID"] == "0" else f"DEAL_STAGE_{deal['CATEGORY_ID']}"
                status = self._status(p, entity, str(value))
                if status is None:
                    raise RestError("", f"STAGE_ID: stage {value!r} is not in the deal's category "
                                        f"{deal['CATEGORY_ID']}", 400)
                if status["STATUS_ID"] != deal["STAGE_ID"]:
                    deal["MOVED_TIME"] = iso(self.now())
                deal["STAGE_ID"] = status["STATUS_ID"]
                sem = self._sem(status)
                deal["STAGE_SEMANTIC_ID"] = sem
                deal["CLOSED"] = "N" if sem == "P" else "Y"
                if sem != "P":
                    deal["CLOSEDATE"] = iso(self.now())
            elif key == "OPPORTUNITY":
                deal["OPPORTUNITY"] = money(value, key)
            elif key == "ASSIGNED_BY_ID":
                deal["ASSIGNED_BY_ID"] = self._user_ref(p, value, key)
            elif key == "CONTACT_ID":
                deal["CONTACT_ID"] = self._ref(p, "contacts", value, key)
            elif key == "COMPANY_ID":
                deal["COMPANY_ID"] = self._ref(p, "companies", value, key) or "0"
            elif key == "LEAD_ID":
                deal["LEAD_ID"] = self._ref(p, "leads", value, key)
            elif key in ("BEGINDATE", "CLOSEDATE"):
                deal[key] = iso(parse_time(value, key))
            elif key in ("CURRENCY_ID", "COMMENTS", "TYPE_ID", "SOURCE_ID", "ORIGINATOR_ID", "ORIGIN_ID", "OPENED",
                         "PROBABILITY") or key.startswith("UF_CRM_"):
                deal[key] = None if value is None else (value if key.startswith("UF_") else str(value))
            elif key == "CATEGORY_ID":
                continue
            else:
                continue   # unknown fields are ignored, as Bitrix24 does

    def update_deal(self, portal: str, deal_id: Any, fields: dict, *, actor: int | None = None,
                    automation: bool = False) -> dict:
        if not isinstance(fields, dict):
            raise RestError("", "fields: expected an object", 400)
        with self.state.change():
            p = self.portal(portal)
            deal = self._record(portal, "deals", deal_id, "Deal")
            actor = actor or int(p["info"]["admin_id"])
            new = copy.deepcopy(deal)
            self._apply_deal(p, new, fields, creating=False)
            new.update(MODIFY_BY_ID=str(actor), DATE_MODIFY=iso(self.now()), IS_NEW="N")
            if new.get("STAGE_ID") != deal.get("STAGE_ID"):
                new["MOVED_BY_ID"] = str(actor)
            deal.clear()
            deal.update(new)
            result = copy.deepcopy(deal)
        self.emit(portal, "ONCRMDEALUPDATE", {"FIELDS": {"ID": result["ID"]}}, user_id=actor, automation=automation,
                  object_id=result["ID"])
        return result

    def delete_deal(self, portal: str, deal_id: Any, *, actor: int | None = None) -> None:
        with self.state.change():
            p = self.portal(portal)
            self._record(portal, "deals", deal_id, "Deal")
            del p["deals"][str(deal_id).strip()]
        self.emit(portal, "ONCRMDEALDELETE", {"FIELDS": {"ID": str(deal_id).strip()}}, user_id=actor,
                  object_id=str(deal_id).strip())

    def deal_stage_with(self, portal: str, deal_id: Any, semantic: str) -> str:
        """The first stage of the deal's category with that semantics (S: won, F: lost, P: first open)."""
        with self.state.lock:
            deal = self._record(portal, "deals", deal_id, "Deal")
            entity = "DEAL_STAGE" if deal["CATEGORY_ID"] == "0" else f"DEAL_STAGE_{deal['CATEGORY_ID']}"
            return next(s["STATUS_ID"] for s in self.statuses(portal, entity) if self._sem(s) == semantic)

    def move_deal(self, portal: str, deal_id: Any, stage_id: str, **kw) -> dict:
        return self.update_deal(portal, deal_id, {"STAGE_ID": stage_id}, **kw)

    def win_deal(self, portal: str, deal_id: Any, **kw) -> dict:
        return self.move_deal(portal, deal_id, self.deal_stage_with(portal, deal_id, "S"), **kw)

    def lose_deal(self, portal: str, deal_id: Any, **kw) -> dict:
        return self.move_deal(portal, deal_id, self.deal_stage_with(portal, deal_id, "F"), **kw)

    # -- leads ------------------------------------------------------------------------------------
    def create_lead(self, portal: str, fields: dict, *, actor: int | None = None, automation: bool = False) -> dict:
        if not isinstance(fields, dict):
            raise RestError("", "fields: expected an object", 400)
        with self.state.change():
            p = self.portal(portal)
            actor = actor or int(p["info"]["admin_id"])
            now = iso(self.now())
            lead = {"ID": str(self.next_id(portal, "lead")), "TITLE": "", "NAME": None, "SECOND_NAME": None,
                    "LAST_NAME": None, "COMPANY_TITLE": None, "SOURCE_ID": "CALL", "STATUS_ID": "NEW",
                    "STATUS_SEMANTIC_ID": "P", "STATUS_DESCRIPTION": None, "CURRENCY_ID": "USD", "OPPORTUNITY": "0.00",
                    "OPENED": "Y", "ASSIGNED_BY_ID": str(actor), "CREATED_BY_ID": str(actor),
                    "MODIFY_BY_ID": str(actor), "DATE_CREATE": now, "DATE_MODIFY": now, "DATE_CLOSED": None,
                    "CONTACT_ID": None, "COMPANY_ID": None, "IS_RETURN_CUSTOMER": "N", "COMMENTS": None,
                    "HAS_EMAIL": "N", "HAS_PHONE": "N", "EMAIL": [], "PHONE": []}
            self._apply_lead(p, lead, fields)
            if not lead["TITLE"]:
                lead["TITLE"] = f"Lead #{lead['ID']}"
            p["leads"][lead["ID"]] = lead
            result = copy.deepcopy(lead)
        self.emit(portal, "ONCRMLEADADD", {"FIELDS": {"ID": result["ID"]}}, user_id=actor, automation=automation,
                  object_id=result["ID"])
        return result

    def _apply_lead(self, p: dict, lead: dict, fields: dict) -> None:
        for key, value in fields.items():
            key = str(key).upper()
            if key == "STATUS_ID":
                status = self._status(p, "STATUS", str(value))
                if status is None:
                    raise RestError("", f"STATUS_ID: unknown lead status {value!r}", 400)
                lead["STATUS_ID"] = status["STATUS_ID"]
                sem = self._sem(status)
                lead["STATUS_SEMANTIC_ID"] = sem
                lead["DATE_CLOSED"] = None if sem == "P" else iso(self.now())
            elif key == "OPPORTUNITY":
                lead["OPPORTUNITY"] = money(value, key)
            elif key == "ASSIGNED_BY_ID":
                lead["ASSIGNED_BY_ID"] = self._user_ref(p, value, key)
            elif key in ("CONTACT_ID", "COMPANY_ID"):
                lead[key] = self._ref(p, "contacts" if key == "CONTACT_ID" else "companies", value, key)
            elif key in ("EMAIL", "PHONE"):
                lead[key] = _multi(value, key, lead[key])
                lead["HAS_" + key] = "Y" if lead[key] else "N"
            elif key in ("TITLE", "NAME", "SECOND_NAME", "LAST_NAME", "COMPANY_TITLE", "SOURCE_ID", "CURRENCY_ID",
                         "COMMENTS", "STATUS_DESCRIPTION", "OPENED") or key.startswith("UF_CRM_"):
                lead[key] = value if key.startswith("UF_") else (None if value is None else str(value))

    def update_lead(self, portal: str, lead_id: Any, fields: dict, *, actor: int | None = None,
                    automation: bool = False) -> dict:
        if not isinstance(fields, dict):
            raise RestError("", "fields: expected an object", 400)
        with self.state.change():
            p = self.portal(portal)
            lead = self._record(portal, "leads", lead_id, "Lead")
            actor = actor or int(p["info"]["admin_id"])
            new = copy.deepcopy(lead)
            self._apply_lead(p, new, fields)
            new.update(MODIFY_BY_ID=str(actor), DATE_MODIFY=iso(self.now()))
            lead.clear()
            lead.update(new)
            result = copy.deepcopy(lead)
        self.emit(portal, "ONCRMLEADUPDATE", {"FIELDS": {"ID": result["ID"]}}, user_id=actor, automation=automation,
                  object_id=result["ID"])
        return result

    def convert_lead(self, portal: str, lead_id: Any, *, create_deal: bool = True, category_id: int = 0,
                     actor: int | None = None) -> dict:
        """The CRM's conversion: a contact from the lead's person, a deal (LEAD_ID set), then the
        lead goes to CONVERTED. Returns `{"lead", "contact", "deal"}`."""
        with self.state.lock:
            lead = copy.deepcopy(self._record(portal, "leads", lead_id, "Lead"))
        if lead["STATUS_SEMANTIC_ID"] != "P":
            raise RestError("", "The lead is already closed", 400)
        contact = None
        if lead.get("NAME") or lead.get("LAST_NAME"):
            contact = self.create_contact(portal, {"NAME": lead.get("NAME"), "LAST_NAME": lead.get("LAST_NAME"),
                                                   "EMAIL": lead.get("EMAIL"), "PHONE": lead.get("PHONE"),
                                                   "ASSIGNED_BY_ID": lead["ASSIGNED_BY_ID"], "LEAD_ID": lead["ID"]},
                                          actor=actor)
        deal = None
        if create_deal:
            deal = self.create_deal(portal, {"TITLE": lead["TITLE"], "OPPORTUNITY": lead["OPPORTUNITY"],
                                             "CURRENCY_ID": lead["CURRENCY_ID"], "CATEGORY_ID": category_id,
                                             "ASSIGNED_BY_ID": lead["ASSIGNED_BY_ID"], "LEAD_ID": lead["ID"],
                                             "CONTACT_ID": contact["ID"] if contact else None}, actor=actor)
        changes: dict[str, Any] = {"STATUS_ID": "CONVERTED"}
        if contact:
            changes["CONTACT_ID"] = contact["ID"]
        lead = self.update_lead(portal, lead["ID"], changes, actor=actor)
        return {"lead": lead, "contact": contact, "deal": deal}

    def close_lead(self, portal: str, lead_id: Any, **kw) -> dict:
        """The lead is junk: status JUNK (semantics F)."""
        return self.update_lead(portal, lead_id, {"STATUS_ID": "JUNK"}, **kw)

    # -- contacts and companies -------------------------------------------------------------------
    def create_contact(self, portal: str, fields: dict, *, actor: int | None = None) -> dict:
        with self.state.change():
            p = self.portal(portal)
            actor = actor or int(p["info"]["admin_id"])
            now = iso(self.now())
            c = {"ID": str(self.next_id(portal, "contact")), "NAME": None, "SECOND_NAME": None, "LAST_NAME": None,
                 "POST": None, "COMPANY_ID": None, "LEAD_ID": None, "SOURCE_ID": None, "OPENED": "Y", "TYPE_ID": "CLIENT",
                 "ASSIGNED_BY_ID": str(actor), "CREATED_BY_ID": str(actor), "MODIFY_BY_ID": str(actor),
                 "DATE_CREATE": now, "DATE_MODIFY": now, "HAS_EMAIL": "N", "HAS_PHONE": "N", "EMAIL": [], "PHONE": []}
            for key, value in (fields or {}).items():
                key = str(key).upper()
                if key in ("EMAIL", "PHONE"):
                    c[key] = _multi(value, key, [])
                    c["HAS_" + key] = "Y" if c[key] else "N"
                elif key == "COMPANY_ID":
                    c[key] = self._ref(p, "companies", value, key)
                elif key == "LEAD_ID":
                    c[key] = self._ref(p, "leads", value, key)
                elif key == "ASSIGNED_BY_ID":
                    c[key] = self._user_ref(p, value, key)
                elif key in ("NAME", "SECOND_NAME", "LAST_NAME", "POST", "SOURCE_ID", "TYPE_ID", "COMMENTS"):
                    c[key] = None if value is None else str(value)
            p["contacts"][c["ID"]] = c
            result = copy.deepcopy(c)
        self.emit(portal, "ONCRMCONTACTADD", {"FIELDS": {"ID": result["ID"]}}, user_id=actor, object_id=result["ID"])
        return result

    def create_company(self, portal: str, fields: dict, *, actor: int | None = None) -> dict:
        with self.state.change():
            p = self.portal(portal)
            actor = actor or int(p["info"]["admin_id"])
            now = iso(self.now())
            c = {"ID": str(self.next_id(portal, "company")), "TITLE": str((fields or {}).get("TITLE") or "Company"),
                 "COMPANY_TYPE": "CUSTOMER", "INDUSTRY": (fields or {}).get("INDUSTRY"), "OPENED": "Y",
                 "ASSIGNED_BY_ID": str(actor), "CREATED_BY_ID": str(actor), "MODIFY_BY_ID": str(actor),
                 "DATE_CREATE": now, "DATE_MODIFY": now, "HAS_EMAIL": "N", "HAS_PHONE": "N"}
            p["companies"][c["ID"]] = c
            return copy.deepcopy(c)


def _multi(value: Any, field: str, current: list) -> list:
    """EMAIL / PHONE multi-fields: `[{"VALUE": .., "VALUE_TYPE": "WORK"}]` (a plain string is one)."""
    if value in (None, ""):
        return list(current or [])
    items = value if isinstance(value, list) else [value]
    out = []
    for n, item in enumerate(items, 1):
        if isinstance(item, str):
            item = {"VALUE": item}
        if not isinstance(item, dict) or not str(item.get("VALUE") or "").strip():
            raise RestError("", f"{field}: every item needs a VALUE", 400)
        out.append({"ID": str(item.get("ID") or n), "VALUE_TYPE": str(item.get("VALUE_TYPE") or "WORK"),
                    "VALUE": str(item["VALUE"]).strip(), "TYPE_ID": field})
    return out

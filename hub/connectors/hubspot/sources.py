"""The one place HubSpot's change sources (`changeSource` of a webhook event, `sourceType` of a
property's history) are interpreted: the neutral cause of a lifecycle change, and whether a person
or automation moved a lead."""
from __future__ import annotations

# [U] the source of a lifecycle stage copied down from the contact's company is undocumented (an SDK
# lists COMPANIES); these are the spellings taken as that sync.
COMPANY_SYNC_SOURCES = frozenset({"COMPANIES", "COMPANY", "COMPANY_SYNC", "COMPANY_INHERITANCE",
                                  "CRM_UI_COMPANY_SYNC", "OBJECT_SYNC"})
_CAUSES = {
    "person": {"CRM_UI", "CRM_UI_BULK_ACTION", "CRM", "MOBILE_IOS", "MOBILE_ANDROID", "SALES", "EMAIL",
               "CONTACTS_WEB", "BOARD_VIEW", "USER"},
    "automation": {"AUTOMATION_PLATFORM", "WORKFLOWS", "WORKFLOW", "AUTOMATION", "SEQUENCES", "BOT",
                   "LEAD_AUTOMATION", "CALCULATED"},
    "integration": {"API", "INTEGRATION", "APP", "INTEGRATIONS_PLATFORM", "CRM_OBJECTS_API", "MIGRATION"},
    "import": {"IMPORT"},
}


def cause_of(source: str | None) -> str:
    """person | automation | integration | import | company_sync | other, from a `changeSource`
    (or a property history's `sourceType`)."""
    value = str(source or "").strip().upper()
    if not value:
        return "other"
    if value in COMPANY_SYNC_SOURCES:
        return "company_sync"
    for cause, sources in _CAUSES.items():
        if value in sources:
            return cause
    return "other"


def moved_by(cause: str) -> str:
    """A lead stage move by a person in HubSpot, or by anything automatic (workflows, the hub's own
    steps through the API, imports)."""
    return "person" if cause == "person" else "automation"

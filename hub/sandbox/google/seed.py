"""Demo data for a fresh sandbox: two Google accounts, a label each, a handful of contacts.

Created through the emulator's own methods, so seeded contacts have etags, change sequence numbers
and memberships exactly like ones created over the API."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .emulator import GoogleSandbox

DEMO = {
    "anna@sandbox.example": ("Kunden", [
        ("José", "Ñúñez-Łęcki", "jose.nunez@acme.example", "+48 601 234 567", "ACME Sp. z o.o.", True),
        ("Marta", "Wiśniewska", "marta.wisniewska@example.pl", "+48 22 123 45 67", "Wiśniewska Consulting", True),
        ("Lars", "Eriksson", "lars@nordlicht.example", None, "Nordlicht AB", True),
        ("Chiara", "Bianchi", "chiara.bianchi@example.it", "+39 06 1234 5678", None, False),
        ("山田", "太郎", "taro.yamada@example.jp", None, "Yamada Trading", False),
    ]),
    "ben@sandbox.example": ("Partners", [
        ("Fatima", "Al-Sayed", "fatima@oasis.example", "+971 4 123 4567", "Oasis Logistics", True),
        ("Tom", "Becker", "tom.becker@example.de", "+49 30 1234567", "Becker GmbH", True),
        ("Priya", "Nair", "priya.nair@example.in", None, None, False),
    ]),
}


def seed_demo_data(sb: "GoogleSandbox") -> None:
    emails = {a["email"] for a in sb.accounts()}
    for email, (label, people) in DEMO.items():
        if email not in emails:
            continue
        group = sb.create_group(email, label, [{"key": "sandbox.seed", "value": "demo"}])
        for given, family, mail, phone, org, labelled in people:
            person = {"names": [{"givenName": given, "familyName": family}],
                      "emailAddresses": [{"value": mail, "type": "work"}]}
            if phone:
                person["phoneNumbers"] = [{"value": phone, "type": "work"}]
            if org:
                person["organizations"] = [{"name": org, "type": "work"}]
            memberships = [{"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}}]
            if labelled:
                memberships.insert(0, {"contactGroupMembership": {
                    "contactGroupResourceName": group["resourceName"]}})
            person["memberships"] = memberships
            sb.create_contact(email, person)

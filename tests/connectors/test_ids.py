"""Each connector says what its ids look like; the core asks by kind and gets the field named."""
from __future__ import annotations

import pytest

from hub.connectors import available
from hub.connectors.ids import InvalidId, check_id, check_ids, id_kinds

LEAD = "adf21080-0e10-11eb-879b-05d71fb426ec"
HOSTILE = ["../users/me", "%2e%2e%2fusers%2fme", "1/../../users/me", "1?x=", "1#", "..", ""]


def test_every_connector_declares_its_id_kinds():
    for provider in available():
        assert id_kinds(provider), provider


@pytest.mark.parametrize("provider,kind,good,canonical", [
    ("pipedrive", "deal", "42", "42"), ("pipedrive", "deal", 42, "42"), ("pipedrive", "person", " 7 ", "7"),
    ("pipedrive", "lead", LEAD.upper(), LEAD), ("asana", "project", "1207000000000016", "1207000000000016"),
    ("google", "person", "people/c1234", "people/c1234"),
    ("google", "contact_group", "contactGroups/4f1e_x-2", "contactGroups/4f1e_x-2")])
def test_valid_ids_come_back_canonical(provider, kind, good, canonical):
    assert check_id(provider, kind, good, "object_id") == canonical


@pytest.mark.parametrize("provider,kind,extra", [
    ("pipedrive", "deal", ["0", "-1", "1.0", "1e3", "+1", "99999999999999999999", True]),
    ("pipedrive", "lead", ["42", LEAD + "0", "{" + LEAD + "}", LEAD.replace("-", "")]),
    ("asana", "project", ["me", "-1", "12 3"]),
    ("google", "person", ["people/", "contactGroups/abc", "people/a/b", "people/c1/../../x"]),
    ("google", "contact_group", ["people/c1", "contactGroups/../people"])])
def test_ids_a_provider_cannot_have_issued_are_refused_naming_the_field(provider, kind, extra):
    for bad in HOSTILE + extra:
        with pytest.raises(InvalidId) as refused:
            check_id(provider, kind, bad, "object_id")
        assert refused.value.field == "object_id" and refused.value.message


def test_check_ids_skips_empty_fields_and_collects_errors():
    good, errors = check_ids("pipedrive", {"pipeline_id": ("pipeline", "3"), "stage_id": ("stage", None),
                                           "owner": ("user", "x")})
    assert good == {"pipeline_id": "3"} and set(errors) == {"owner"}

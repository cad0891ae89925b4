"""A sync's label is a Google resource name that goes into API paths: one the contact store
cannot have issued is refused with the `group` field named, before anything is stored."""
from __future__ import annotations

import pytest

from hub.sync import service
from tests.sync.conftest import setup  # noqa: F401  (fixture)


@pytest.mark.parametrize("group", ["contactGroups/../people/me", "contactGroups/x?y=", "contactGroups/x#",
                                   "contactGroups/", "people/c1", "contactGroups/a/b"])
def test_a_label_name_of_the_wrong_shape_is_refused(setup, group):  # noqa: F811
    with setup.hub.services.db.begin() as s:
        conn = service.store_connections(s, setup.iid)[0]
        with pytest.raises(service.SyncInputError) as refused:
            service.validate(setup.hub.services, s, setup.iid, {"name": "x", "store_connection_id": conn.id,
                                                                "group": group})
    assert "group" in refused.value.fields


def test_a_label_name_of_the_right_shape_passes(setup):  # noqa: F811
    with setup.hub.services.db.begin() as s:
        conn = service.store_connections(s, setup.iid)[0]
        out = service.validate(setup.hub.services, s, setup.iid, {"name": "x", "store_connection_id": conn.id,
                                                                  "group": setup.label})
    assert out["group_resource_name"] == setup.label

"""Read methods against the emulator over HTTP: envelopes, opt_fields, offset pagination."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from hub.errors import Fatal


def test_me_is_the_token_user(dana, ids):
    me = dana.client.me()
    assert me["gid"] == ids["dana"]
    assert me["email"] == "dana.whitfield@acme.example"
    assert {w["gid"] for w in me["workspaces"]} == {ids["org"], ids["personal"]}


def test_workspaces_carry_is_organization(dana, ids):
    found = {w["gid"]: w for w in dana.client.workspaces()}
    assert found[ids["org"]]["is_organization"] is True
    assert found[ids["org"]]["email_domains"] == ["acme.example"]
    assert found[ids["personal"]]["is_organization"] is False
    query = parse_qs(urlsplit(dana.calls[0][1]).query)
    assert query["limit"] == ["100"] and query["opt_fields"] == ["name,is_organization,email_domains"]


def test_pagination_follows_offsets_across_pages(connect, emu, ids):
    extra = [emu.add_user(f"User {i:02d}", f"user{i}@acme.example", [ids["org"]]) for i in range(9)]
    conn = connect(ids["dana"], page_limit=2)
    users = conn.client.users(ids["org"])
    first = next(users)  # a generator: only the first page has been fetched
    assert len(conn.calls) == 1
    rest = list(users)
    gids = [first["gid"], *(u["gid"] for u in rest)]
    assert gids == sorted([ids["dana"], ids["luis"], ids["priya"], *extra], key=int)  # /users sorts by id
    assert len(set(gids)) == 12
    assert len(conn.calls) == 6  # 12 users, 2 a page, the last page says next_page: null
    offsets = [parse_qs(urlsplit(url).query).get("offset") for _, url in conn.calls]
    assert offsets[0] is None and all(offsets[1:])
    assert {"name", "email"} <= set(rest[0])


def test_workspaces_paginate_too(connect, emu, ids):
    emu.add_workspace("Third", is_organization=True)  # Dana is not a member: not listed
    extra = emu.add_workspace("Fourth")
    with emu.state.change():
        emu._t("users")[ids["dana"]]["workspaces"].append(extra)
    conn = connect(ids["dana"], page_limit=1)
    assert [w["gid"] for w in conn.client.workspaces()] == [ids["org"], ids["personal"], extra]
    assert len(conn.calls) == 3


def test_teams_of_an_organization(dana, ids):
    teams = {t["name"]: t["gid"] for t in dana.client.teams(ids["org"])}
    assert teams == {"Sales Ops": ids["sales"], "Customer Success": ids["success"]}


def test_teams_of_a_plain_workspace_is_fatal(dana, ids):
    with pytest.raises(Fatal) as err:
        list(dana.client.teams(ids["personal"]))
    assert err.value.status == 400 and "organizations" in str(err.value)


def test_projects_filters(dana, ids):
    active = {p["gid"]: p for p in dana.client.projects(ids["org"])}
    assert set(active) == {ids["onboarding"], ids["renewals"]}
    assert active[ids["onboarding"]]["team"]["gid"] == ids["sales"]
    assert active[ids["onboarding"]]["archived"] is False
    assert [p["gid"] for p in dana.client.projects(ids["org"], archived=True)] == [ids["archived"]]
    assert len(list(dana.client.projects(ids["org"], archived=None))) == 3
    assert [p["gid"] for p in dana.client.projects(ids["org"], team_gid=ids["success"])] == [ids["renewals"]]
    personal = list(dana.client.projects(ids["personal"]))
    assert [p["gid"] for p in personal] == [ids["home"]] and "team" not in personal[0]


def test_users_of_a_workspace(dana, ids):
    users = {u["gid"]: u for u in dana.client.users(ids["org"])}
    assert set(users) == {ids["dana"], ids["luis"], ids["priya"]}
    assert users[ids["luis"]]["email"] == "luis.ortega@acme.example"
    assert [u["gid"] for u in dana.client.users(ids["personal"])] == [ids["dana"]]


def test_path_segments_are_escaped(dana):
    with pytest.raises(Fatal) as err:
        dana.client.task("12/../../workspaces")
    assert err.value.status == 404
    assert "/tasks/12%2F..%2F..%2Fworkspaces" in dana.calls[-1][1]

"""Ids reach the provider only as one quoted path segment: whatever an id holds (`../users/me`,
`%2e%2e`, `?`, `#`, `/`), every connector's client calls the endpoint it meant, as the request goes
out on the wire (after requests prepared the URL); a template with an id formatted in is refused."""
from __future__ import annotations

import json

import pytest
import requests
from requests.adapters import BaseAdapter

from hub.connectors.asana.client import AsanaClient
from hub.connectors.base import build_path, path_segment
from hub.connectors.google.client import PeopleClient
from hub.connectors.pipedrive.client import PipedriveClient

HOSTILE = ["../users/me", "%2e%2e%2fusers%2fme", "1/../../users/me", "1?x=", "1#", "a b/c"]
BASE = "https://api.example.test"


class Wire(BaseAdapter):
    """Records each prepared request's URL (what requests really sends) and answers 200."""

    def __init__(self, body: dict):
        super().__init__()
        self.urls: list[str] = []
        self.body = body

    def send(self, request, **kwargs):
        self.urls.append(request.url)
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(self.body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url, response.request = request.url, request
        return response

    def close(self):
        pass


def wired(body: dict) -> tuple[requests.Session, Wire]:
    session, wire = requests.Session(), Wire(body)
    session.mount("https://", wire)
    return session, wire


def path_of(url: str, prefix: str) -> str:
    assert url.startswith(BASE + prefix), url
    return url[len(BASE + prefix):].split("?", 1)[0]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_value_is_one_segment(value):
    segment = path_segment(value)
    assert "/" not in segment and "?" not in segment and "#" not in segment
    assert requests.utils.unquote(segment) == value
    assert build_path("api/v1/leads/{lead_id}", {"lead_id": value}) == f"api/v1/leads/{segment}"


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_values_naming_another_endpoint_are_refused(value):
    with pytest.raises(ValueError):
        build_path("api/v1/leads/{lead_id}", {"lead_id": value})


@pytest.mark.parametrize("template", ["api/v2/deals/42", "tasks/1207000000000016", "api/v1/leads/../users/me",
                                      "api/v1/leads/1?x=", "api/v1/leads/1#", "v1/people/%2e%2e",
                                      "api/v1/leads/0f8fad5b-d9cb-469f-a165-70867728950e"])
def test_ids_formatted_into_the_template_are_refused(template):
    with pytest.raises(ValueError, match="path_params"):
        build_path(template)


def test_placeholders_must_match_the_params():
    with pytest.raises(ValueError, match="no value"):
        build_path("api/v2/deals/{deal_id}", {})
    with pytest.raises(ValueError, match="unused"):
        build_path("api/v2/deals/{deal_id}", {"deal_id": 1, "other": 2})
    with pytest.raises(ValueError):
        build_path("api/v2/deals/{deal_id!r}", {"deal_id": 1})


@pytest.mark.parametrize("lead_id", HOSTILE)
def test_pipedrive_lead_id_cannot_leave_the_leads_endpoint(lead_id):
    session, wire = wired({"success": True, "data": {"id": "x"}})
    PipedriveClient(BASE, None, session=session, rate_limit=None).lead(lead_id)
    [url] = wire.urls
    assert path_of(url, "/api/v1/leads/") == path_segment(lead_id)


def test_pipedrive_integer_ids_go_through_path_params():
    session, wire = wired({"success": True, "data": {"id": 7}})
    client = PipedriveClient(BASE, None, session=session, rate_limit=None)
    client.deal(7)
    client.person(8)
    client.organization(9)
    client.delete_webhook(10)
    assert [u[len(BASE):] for u in wire.urls] == ["/api/v2/deals/7", "/api/v2/persons/8",
                                                  "/api/v2/organizations/9", "/api/v1/webhooks/10"]
    with pytest.raises(ValueError):
        client.deal("../users/me")   # int() refuses it before any request
    assert len(wire.urls) == 4


@pytest.mark.parametrize("gid", HOSTILE)
def test_asana_gids_cannot_leave_their_endpoint(gid):
    session, wire = wired({"data": {"gid": "1"}})
    client = AsanaClient(BASE, None, session=session)
    client.task(gid)
    client.task_by_external(gid)
    segment = path_segment(gid)
    assert [path_of(u, "/") for u in wire.urls] == [f"tasks/{segment}", f"tasks/external:{segment}"]


def test_asana_list_paths_quote_their_gids():
    session, wire = wired({"data": [], "next_page": None})
    client = AsanaClient(BASE, None, session=session)
    list(client.teams("../users/me"))
    list(client.projects("1", team_gid="1?x="))
    list(client.projects("1#"))
    assert [path_of(u, "/") for u in wire.urls] == ["workspaces/..%2Fusers%2Fme/teams", "teams/1%3Fx%3D/projects",
                                                    "workspaces/1%23/projects"]


@pytest.mark.parametrize("suffix", HOSTILE)
def test_google_resource_names_stay_in_their_collection(suffix):
    session, wire = wired({"resourceName": "people/c1", "etag": "e"})
    client = PeopleClient(BASE, None, session=session)
    client.get_person(f"people/{suffix}", "names")
    client.update_contact(f"people/{suffix}", {"etag": "e"}, "names", "names")
    client.delete_contact(f"people/{suffix}")
    client.group(f"contactGroups/{suffix}")
    segment = path_segment(suffix)
    assert [path_of(u, "/v1/") for u in wire.urls] == [
        f"people/{segment}", f"people/{segment}:updateContact", f"people/{segment}:deleteContact",
        f"contactGroups/{segment}"]


def test_google_refuses_a_resource_name_of_another_collection():
    session, wire = wired({})
    client = PeopleClient(BASE, None, session=session)
    for name in ("contactGroups/abc", "people", "people/", "../people/c1", "users/me"):
        with pytest.raises(ValueError):
            client.get_person(name, "names")
    with pytest.raises(ValueError):
        client.modify_members("people/c1", add=["people/c2"])
    assert wire.urls == []

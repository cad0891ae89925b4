"""A provider's shared session prepares a plain call itself (no cookie jars copied, no environment
read): what goes on the wire must be exactly what `requests.Session.request` would send."""
from __future__ import annotations

import io

import pytest
import requests
from requests.adapters import BaseAdapter

from hub.connectors.base import _NoCookies, shared_session


class Recording(BaseAdapter):
    def __init__(self):
        super().__init__()
        self.sent: list[tuple] = []

    def send(self, request, **kwargs):
        body = request.body.read() if hasattr(request.body, "read") else request.body
        self.sent.append((request.method, request.url, dict(request.headers), body,
                          {k: kwargs.get(k) for k in ("stream", "verify", "cert", "proxies", "timeout")}))
        response = requests.Response()
        response.status_code, response._content, response.url, response.request = 200, b"{}", request.url, request
        return response

    def close(self):
        pass


def sessions():
    ours = shared_session("test-shared-session")
    plain = requests.Session()
    plain.trust_env = False
    plain.cookies.set_policy(_NoCookies())
    for session in (ours, plain):
        session.mount("https://", Recording())
    return ours, plain


CALLS = [
    ("get", "https://api.example.test/v1/deals", dict(params={"start": 0, "limit": 500, "ids": [1, 2]})),
    ("POST", "https://api.example.test/v1/tasks?opt_fields=name", dict(json={"data": {"name": "Zoë ✓", "notes": None}})),
    ("PUT", "https://api.example.test/v1/x", dict(data={"a": "1", "b": ["2", "3"]}, headers={"X-Trace": "7"})),
    ("PATCH", "https://api.example.test/v1/x", dict(data=b"raw", headers={"content-type": "text/plain",
                                                                          "accept": "text/csv"})),
    ("DELETE", "https://api.example.test/v1/x/9", dict(headers={"Accept-Encoding": None})),   # None drops the session's
    ("POST", "https://api.example.test/v1/files", dict(files={"file": ("a.txt", io.BytesIO(b"hello"), "text/plain")})),
    ("GET", "https://api.example.test/v1/stream", dict(stream=True, timeout=(3.05, 30))),
]


@pytest.mark.parametrize("method,url,kwargs", CALLS, ids=[c[0] + " " + c[1].rsplit("/", 1)[1] for c in CALLS])
def test_a_plain_call_sends_what_requests_would(method, url, kwargs):
    ours, plain = sessions()
    ours.request(method, url, timeout=kwargs.pop("timeout", (5, 30)), **kwargs)
    for value in kwargs.values():      # the same file again from its first byte
        if isinstance(value, dict):
            for item in value.values():
                if isinstance(item, tuple):
                    item[1].seek(0)
    plain.request(method, url, timeout=(5, 30) if "stream" not in kwargs else (3.05, 30), **kwargs)
    [mine], [theirs] = ours.get_adapter(url).sent, plain.get_adapter(url).sent
    if "files" in kwargs:        # the multipart boundary is random: compare the parts without it
        boundary = lambda sent: sent[2]["Content-Type"].split("boundary=")[1].encode()   # noqa: E731
        mine = mine[:3] + (mine[3].replace(boundary(mine), b"B"),) + mine[4:]
        theirs = theirs[:3] + (theirs[3].replace(boundary(theirs), b"B"),) + theirs[4:]
        mine[2].pop("Content-Type"), theirs[2].pop("Content-Type")
    assert mine == theirs


def test_session_hooks_and_per_call_options_still_apply():
    ours, _ = sessions()
    seen = []
    ours.hooks["response"].append(lambda response, *a, **k: seen.append(response.request.url))
    try:
        ours.request("GET", "https://api.example.test/v1/a")
        ours.request("GET", "https://api.example.test/v1/b", auth=("user", "secret"))   # requests' own way
    finally:
        ours.hooks["response"].clear()
    sent = ours.get_adapter("https://api.example.test").sent
    assert seen == ["https://api.example.test/v1/a", "https://api.example.test/v1/b"]
    assert "Authorization" not in sent[0][2] and sent[1][2]["Authorization"].startswith("Basic ")

"""A scripted person with a browser (cookies, redirects, forms) for end-to-end tests over HTTP."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser(requests.Session):
    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def request(self, method, url, *args, **kwargs):
        return super().request(method, self.url(url), *args, **kwargs)

    def csrf(self, path: str = "/") -> str:
        """The CSRF token a page of the hub embeds (what a real form would send)."""
        page = self.get(path)
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on {path} ({page.status_code})"
        return match.group(1)

    def form_post(self, path: str, data: dict | None = None, csrf_from: str | None = None, **kw):
        data = dict(data or {})
        data["csrf_token"] = self.csrf(csrf_from or path)
        return self.post(path, data=data, **kw)

    # -- the provider's consent screens (sandbox) ------------------------------------------------
    def authorize_pipedrive(self, start_path: str, *, user_id: int, visibility: str = "me",
                            user_ids=(), notify: bool = False, decision: str = "allow") -> requests.Response:
        """Start at the hub (install or login), pass the sandbox's step 1 and 2, land on the hub's callback."""
        first = self.get(start_path, allow_redirects=False)
        assert first.status_code == 302, first.text
        authorize = first.headers["Location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        form = {"client_id": query["client_id"], "redirect_uri": query["redirect_uri"], "state": query.get("state", ""),
                "user_id": str(user_id), "step": "2", "decision": decision, "visibility": visibility,
                "user_ids": [str(u) for u in user_ids]}
        if notify:
            form["notify"] = "1"
        consent = self.post(authorize.split("?")[0], data=form, allow_redirects=False)
        if consent.status_code != 302:
            return consent
        return self.get(urljoin(authorize, consent.headers["Location"]))

    def authorize_target(self, installation_id: int, provider: str, form: dict) -> requests.Response:
        """Press "Connect <provider>" on the hub, allow on the sandbox's consent screen, land on the hub."""
        start = self.form_post(f"/i/{installation_id}/connect/{provider}", csrf_from=f"/i/{installation_id}/settings",
                               allow_redirects=False)
        assert start.status_code == 302, start.text
        authorize = start.headers["Location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        data = {**query, **form}
        consent = self.post(authorize.split("?")[0], data=data, allow_redirects=False)
        assert consent.status_code == 302, consent.text[:500]
        return self.get(urljoin(authorize, consent.headers["Location"]))

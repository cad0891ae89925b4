"""Typed Asana REST client (FACTS.md §1-§11): data envelopes, `opt_fields`, offset paging, uploads.

Why it looks the way it does:
- Every id is a string gid; every body is `{"data": ...}` both ways; `opt_fields` goes in the query
  (the spec declares it there for reads and writes alike).
- Lists are generators that follow `next_page.offset` with `limit=100`; offsets are opaque and
  expire (about 15 minutes), so consume a listing promptly instead of parking the generator.
- Tasks carry custom external data (`external.gid`, private to this OAuth app). `task_by_external`
  is the look-up-before-create of the exactly-once design, `ensure_task` the whole find-or-create.
- Attachments are streamed as multipart from a file or an iterator of bytes: the file never sits
  in memory whole, a known size above Asana's 100 MB limit fails before any byte is sent, and an
  unknown size is counted while streaming and aborted as soon as it passes the limit.
"""
from __future__ import annotations

import secrets
from typing import Any, BinaryIO, Iterable, Iterator, Sequence
from urllib.parse import quote

import requests

from ...errors import Fatal
from ..base import ApiClient, TokenSource, _LongWait

MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024   # FACTS §7 / spec createAttachmentForObject
EXTERNAL_GID_MAX = 1024                    # FACTS §8
EXTERNAL_DATA_MAX = 32768
PAGE_LIMIT = 100                           # FACTS §9: 1..100

WORKSPACE_FIELDS = ("name", "is_organization", "email_domains")
TEAM_FIELDS = ("name",)
PROJECT_FIELDS = ("name", "archived", "team.name", "permalink_url")
USER_FIELDS = ("name", "email")
ATTACHMENT_FIELDS = ("name", "resource_subtype", "size", "created_at", "host", "permanent_url")


class AttachmentTooLarge(Fatal):
    """The file exceeds Asana's per-attachment limit; retrying cannot help."""

    def __init__(self, message: str, size: int | None, limit: int):
        super().__init__(message, 413)
        self.size = size
        self.limit = limit


class StreamNotReplayable(_LongWait):
    """An upload must be sent again (401, 429, 5xx) but its stream cannot be rewound: the call is
    handed to the job queue, which re-runs the job with a fresh stream instead of retrying here."""


class AsanaClient(ApiClient):
    """One Asana connection (one token). `base_url` is the manifest's `api_url` (or the sandbox's,
    via `with_origin`). `page_limit` and `max_attachment_bytes` exist for tests and the sandbox;
    production keeps Asana's 100 and 100 MB. Pass `rate_limit=` (requests/second) to stay under the
    token's per-minute budget."""

    provider = "asana"

    def __init__(self, base_url: str, tokens: TokenSource | None, *, page_limit: int = PAGE_LIMIT,
                 max_attachment_bytes: int = MAX_ATTACHMENT_BYTES, **kwargs: Any):
        if not 1 <= page_limit <= 100:
            raise ValueError("Asana accepts limit from 1 to 100")
        super().__init__(base_url, tokens, **kwargs)
        self.page_limit = page_limit
        self.max_attachment_bytes = max_attachment_bytes

    # -- plumbing -------------------------------------------------------------------------------
    def error_message(self, response: requests.Response) -> str:
        """Asana's `{"errors": [{"message", "help", "phrase"}]}`; the phrase (500s only) is what
        Asana support asks for, so it stays in the message."""
        try:
            body = response.json()
        except ValueError:
            return super().error_message(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        if not isinstance(errors, list) or not errors:
            return super().error_message(response)
        parts = []
        for err in errors:
            if not isinstance(err, dict):
                continue
            text = str(err.get("message") or "").strip() or "unknown error"
            if err.get("phrase"):
                text += f" (support phrase: {err['phrase']})"
            parts.append(text)
        return "; ".join(parts) or super().error_message(response)

    def check(self, response: requests.Response, ok: tuple[int, ...] = ()) -> requests.Response:
        if response.status_code == 413:  # Asana does not document the oversize status; be ready for it
            raise AttachmentTooLarge(f"asana 413: {self.error_message(response)}", None, self.max_attachment_bytes)
        return super().check(response, ok)

    def _raw(self, method, url, params, json, data, files, headers, stream, token):
        if isinstance(data, MultipartStream):
            data.rewind()  # every (re)send starts the body from its first byte
        return super()._raw(method, url, params, json, data, files, headers, stream, token)

    @staticmethod
    def _fields(fields: Sequence[str] | None) -> dict[str, str]:
        return {"opt_fields": ",".join(fields)} if fields else {}

    def _get(self, path: str, *, path_params: dict | None = None, params: dict | None = None,
             fields: Sequence[str] | None = None) -> dict:
        return self.json("GET", path, path_params=path_params, params={**(params or {}), **self._fields(fields)})["data"]

    def _post(self, path: str, data: dict, *, path_params: dict | None = None,
              fields: Sequence[str] | None = None) -> dict:
        return self.json("POST", path, path_params=path_params, params=self._fields(fields) or None,
                         json={"data": data})["data"]

    def paginate(self, path: str, *, path_params: dict | None = None, params: dict | None = None,
                 fields: Sequence[str] | None = None) -> Iterator[dict]:
        """Every record of a list endpoint, page by page (`limit` + the server's opaque `offset`)."""
        query = {**(params or {}), **self._fields(fields), "limit": self.page_limit}
        while True:
            body = self.json("GET", path, path_params=path_params, params=query)
            yield from body["data"]
            next_page = body.get("next_page")
            if not next_page or not next_page.get("offset"):
                return
            query["offset"] = next_page["offset"]

    # -- who and where --------------------------------------------------------------------------
    def me(self, fields: Sequence[str] | None = ("name", "email", "workspaces.name")) -> dict:
        """The user the token acts for."""
        return self._get("users/me", fields=fields)

    def workspaces(self) -> Iterator[dict]:
        """Workspaces and organizations, with `is_organization` (it decides how projects are made)."""
        return self.paginate("workspaces", fields=WORKSPACE_FIELDS)

    def teams(self, workspace_gid: str) -> Iterator[dict]:
        """Teams of an organization (a plain workspace has none; Asana answers 400 -> Fatal)."""
        return self.paginate("workspaces/{workspace_gid}/teams", path_params={"workspace_gid": workspace_gid},
                             fields=TEAM_FIELDS)

    def projects(self, workspace_gid: str, team_gid: str | None = None,
                 archived: bool | None = False) -> Iterator[dict]:
        """Projects of a workspace, or of one team; `archived=None` lists both kinds."""
        params = {} if archived is None else {"archived": "true" if archived else "false"}
        if team_gid:
            return self.paginate("teams/{team_gid}/projects", path_params={"team_gid": team_gid}, params=params,
                                 fields=PROJECT_FIELDS)
        return self.paginate("workspaces/{workspace_gid}/projects", path_params={"workspace_gid": workspace_gid},
                             params=params, fields=PROJECT_FIELDS)

    def users(self, workspace_gid: str) -> Iterator[dict]:
        """Users of a workspace through GET /users (paginated; the per-workspace route stops at 2000)."""
        return self.paginate("users", params={"workspace": workspace_gid}, fields=USER_FIELDS)

    # -- tasks ----------------------------------------------------------------------------------
    def create_task(self, workspace_gid: str, name: str, html_notes: str | None = None,
                    projects: Sequence[str] = (), assignee: str | None = None,
                    external_gid: str | None = None, external_data: str | None = None,
                    fields: Sequence[str] | None = None) -> dict:
        """POST /tasks. `html_notes` must already be valid Asana rich text (`richtext.to_html_notes`);
        `external_gid` makes the task findable by `task_by_external` (the exactly-once key).
        A timed-out POST is retried in-call, so a lost response can create twice; jobs should call
        `ensure_task`, which the external id makes safe."""
        data: dict[str, Any] = {"workspace": workspace_gid, "name": name}
        if html_notes is not None:
            data["html_notes"] = html_notes
        if projects:
            data["projects"] = list(projects)
        if assignee is not None:
            data["assignee"] = assignee
        if external_gid is not None or external_data is not None:
            data["external"] = _external(external_gid, external_data)
        return self._post("tasks", data, fields=fields)

    def task(self, gid: str, fields: Sequence[str] | None = None) -> dict:
        """GET /tasks/{gid}; `html_notes` and `external` are opt-in fields."""
        return self._get("tasks/{task_gid}", path_params={"task_gid": gid}, fields=fields)

    def task_by_external(self, external_gid: str, fields: Sequence[str] | None = None) -> dict | None:
        """The task this app tagged with `external_gid`, or None. External ids are private to the
        OAuth app, so another app's tasks never match."""
        response = self.request("GET", "tasks/external:{external_gid}", path_params={"external_gid": external_gid},
                                params=self._fields(fields) or None, ok=(404,))
        if response.status_code == 404:
            return None
        return response.json()["data"]

    def ensure_task(self, workspace_gid: str, name: str, *, external_gid: str,
                    **create: Any) -> tuple[dict, bool]:
        """Find-or-create by external id: (task, created). Safe to repeat after a lost response or
        a crash. A concurrent creator makes Asana refuse the duplicate external id; then the
        winner's task is returned."""
        found = self.task_by_external(external_gid)
        if found is not None:
            return found, False
        try:
            return self.create_task(workspace_gid, name, external_gid=external_gid, **create), True
        except Fatal as exc:
            if exc.status != 400:
                raise
            found = self.task_by_external(external_gid)
            if found is None:
                raise
            return found, False

    # -- projects -------------------------------------------------------------------------------
    def create_project(self, workspace_gid: str, name: str, team_gid: str | None = None,
                       html_notes: str | None = None, fields: Sequence[str] | None = None) -> dict:
        """With a team: POST /teams/{team}/projects (needs no deprecated `team` body field). Without:
        POST /projects in the workspace; an organization then refuses (400 ``Missing required
        `team` field``), surfaced as Fatal with Asana's message for the admin to pick a team."""
        data: dict[str, Any] = {"name": name}
        if html_notes is not None:
            data["html_notes"] = html_notes
        if team_gid:
            return self._post("teams/{team_gid}/projects", data, path_params={"team_gid": team_gid}, fields=fields)
        return self._post("projects", {**data, "workspace": workspace_gid}, fields=fields)

    # -- attachments ----------------------------------------------------------------------------
    def upload_attachment(self, parent_gid: str, filename: str, stream: BinaryIO | Iterable[bytes],
                          content_type: str | None, size: int | None = None) -> dict:
        """POST /attachments as streamed multipart (Asana answers 200, not 201).

        `stream` is a binary file object or an iterator of bytes. With `size`, the body has a
        Content-Length and an oversize file fails before uploading; without it the body is sent
        chunked and counted. A seekable stream is rewound for in-call retries; any other stream
        turns a needed resend into `StreamNotReplayable` for the job queue."""
        limit = self.max_attachment_bytes
        if size is not None and size > limit:
            raise AttachmentTooLarge(f"asana: {filename!r} is {size} bytes; Asana's limit is {limit} bytes",
                                     size, limit)
        body = MultipartStream([("parent", parent_gid)], filename, stream,
                               content_type or "application/octet-stream", size=size, limit=limit)
        return self.json("POST", "attachments", data=body,
                         headers={"Content-Type": body.content_type})["data"]

    def attachments(self, parent_gid: str) -> Iterator[dict]:
        """Attachments of a task or project (download URLs are short-lived: never store them)."""
        return self.paginate("attachments", params={"parent": parent_gid}, fields=ATTACHMENT_FIELDS)


# -- helpers ------------------------------------------------------------------------------------

def _external(gid: str | None, data: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if gid is not None:
        if not gid or len(gid) > EXTERNAL_GID_MAX:
            raise Fatal(f"asana: external gid must be 1..{EXTERNAL_GID_MAX} characters", 400)
        out["gid"] = gid
    if data is not None:
        if len(data) > EXTERNAL_DATA_MAX:
            raise Fatal(f"asana: external data must be at most {EXTERNAL_DATA_MAX} characters", 400)
        out["data"] = data
    return out


def _disposition(name: str, filename: str | None = None) -> str:
    """Content-Disposition of one part. Non-ASCII (and quote/CR/LF) characters in file names are
    percent-encoded in `filename` and given exactly in RFC 5987 `filename*` (FACTS §7)."""
    value = f'form-data; name="{name}"'
    if filename is not None:
        plain = quote(filename, safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")
        value += f'; filename="{plain}"'
        if plain != filename:
            value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


class MultipartStream:
    """A multipart/form-data body produced on demand from small fields and one file stream.

    requests hands file-like bodies to urllib3, which pulls them with `read(blocksize)`: memory
    stays at one chunk however large the file. `len` (with a known size) gives a Content-Length;
    without it the body goes chunked and the byte count is enforced while streaming. (Deliberately
    not an io.IOBase: requests would probe its `tell`/`fileno` and drop the Content-Length.)"""

    chunk_size = 64 * 1024

    def __init__(self, fields: Sequence[tuple[str, str]], filename: str, stream: BinaryIO | Iterable[bytes],
                 content_type: str, *, size: int | None, limit: int):
        self.boundary = f"relayhub-{secrets.token_hex(16)}"
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        crlf = "\r\n"
        head = "".join(f"--{self.boundary}{crlf}Content-Disposition: {_disposition(k)}{crlf}{crlf}{v}{crlf}"
                       for k, v in fields)
        head += (f"--{self.boundary}{crlf}Content-Disposition: {_disposition('file', filename)}{crlf}"
                 f"Content-Type: {content_type}{crlf}{crlf}")
        self._head = head.encode("utf-8")
        self._tail = f"{crlf}--{self.boundary}--{crlf}".encode("ascii")
        self._stream = stream
        self._seekable = bool(getattr(stream, "seekable", lambda: False)())
        self._origin = stream.tell() if self._seekable else 0
        self._size = size
        self._limit = limit
        self.len = len(self._head) + size + len(self._tail) if size is not None else None
        self._started = False
        self._reset()

    def _reset(self) -> None:
        self._buffer = self._head
        self._file_bytes = 0
        self._file_done = False
        self._tail_sent = False
        self._source: Iterator[bytes] | None = None

    def rewind(self) -> None:
        """Prepare a (re)send; raises StreamNotReplayable when the file cannot be read again."""
        if not self._started:
            return
        if not self._seekable:
            raise StreamNotReplayable("asana: the upload must be resent but its stream cannot be rewound")
        self._stream.seek(self._origin)  # type: ignore[union-attr]
        self._reset()
        self._started = False

    def __iter__(self) -> Iterator[bytes]:  # requests only streams bodies that are iterable
        while chunk := self.read(self.chunk_size):
            yield chunk

    def read(self, n: int = -1) -> bytes:
        self._started = True
        n = self.chunk_size if n is None or n < 0 else n
        while len(self._buffer) < n and not self._tail_sent:
            if self._file_done:
                self._buffer += self._tail
                self._tail_sent = True
            else:
                self._buffer += self._next_file_chunk(n)
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def _next_file_chunk(self, n: int) -> bytes:
        chunk = self._pull(n)
        if not chunk:
            if self._size is not None and self._file_bytes != self._size:
                raise Fatal(f"asana: the file stream ended after {self._file_bytes} of {self._size} declared bytes")
            self._file_done = True
            return b""
        self._file_bytes += len(chunk)
        if self._size is not None and self._file_bytes > self._size:
            raise Fatal(f"asana: the file stream is longer than its declared {self._size} bytes")
        if self._file_bytes > self._limit:
            raise AttachmentTooLarge(f"asana: the file passed Asana's limit of {self._limit} bytes while "
                                     "uploading", None, self._limit)
        return chunk

    def _pull(self, n: int) -> bytes:
        read = getattr(self._stream, "read", None)
        if read is not None:
            return read(max(n, self.chunk_size)) or b""
        if self._source is None:
            self._source = iter(self._stream)  # type: ignore[arg-type]
        for chunk in self._source:
            if chunk:
                return bytes(chunk)
        return b""

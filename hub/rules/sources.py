"""The CRM side of a rule run: read the deal or lead and what the rule carries (contacts, pinned
notes, files), and stream a file's bytes. Rules see a `SourceRecord`, never the provider's client.

The deal itself is the state the event carried (what the rule matched on); contacts, notes and
files are read from the API when the run happens, and only when a toggle asks for them."""
from __future__ import annotations

import itertools
import logging
from typing import Any, Iterator

from ..connectors.pipedrive.client import PipedriveClient
from ..errors import Fatal
from ..mappings import Carry, SourceRecord
from . import connections

log = logging.getLogger("hub.rules")


class PipedriveSource:
    def __init__(self, services: Any, connection, client: PipedriveClient | None = None):
        self.services = services
        self.connection = connection
        self.client = client or connections.pipedrive_client(services, connection)
        self.base = connection.api_base.rstrip("/")

    def url(self, kind: str, object_id: Any) -> str:
        return f"{self.base}/deal/{object_id}" if kind == "deal" else f"{self.base}/leads/inbox/{object_id}"

    def load(self, kind: str, object_id: str, current: dict | None, carry: Carry,
             warnings: list[str] | None = None) -> SourceRecord:
        """`current`: the object as the event saw it (None: read it now, e.g. for a preview)."""
        warnings = warnings if warnings is not None else []
        c = self.client
        data = dict(current) if current else (c.deal(int(object_id)) if kind == "deal" else c.lead(object_id))
        if not data:
            raise Fatal(f"pipedrive: {kind} {object_id} was not found", 404)
        record = SourceRecord(kind=kind, data=data, url=self.url(kind, data.get("id", object_id)))
        try:
            if kind == "deal":
                record.pipeline, record.stage = connections.stage_names(
                    self.services, self.connection, data.get("pipeline_id"), data.get("stage_id"))
            record.owner = connections.crm_users(self.services, self.connection).get(str(data.get("owner_id")))
        except Fatal as exc:   # names are a nicety: a refused metadata call must not fail the run
            warnings.append(f"names of pipeline, stage or owner unavailable: {exc}")
        if carry.contacts:
            person_id = data.get("person_id")
            org_id = data.get("org_id") or data.get("organization_id")
            record.person = self._optional(lambda: c.person(int(person_id)), "person", person_id, warnings) \
                if person_id else None
            record.org = self._optional(lambda: c.organization(int(org_id)), "organization", org_id, warnings) \
                if org_id else None
        if carry.notes:
            record.notes = self.pinned_notes(kind, data.get("id", object_id))
        if carry.attachments and kind == "deal":
            record.files = [f for f in c.deal_files(int(data.get("id", object_id))) if f.get("active_flag", True)]
        return record

    def pinned_notes(self, kind: str, object_id: Any) -> list[dict]:
        if kind == "deal":
            notes = self.client.deal_notes(int(object_id), pinned_only=True)
            return [n for n in notes if n.get("pinned_to_deal_flag", True)]
        notes = self.client.iter_offset("/api/v1/notes", {"lead_id": str(object_id)})
        return [n for n in notes if n.get("pinned_to_lead_flag")]

    @staticmethod
    def _optional(load, what: str, ident: Any, warnings: list[str]) -> dict | None:
        """A deleted contact leaves a hole in the task, not a failed run."""
        try:
            return load()
        except Fatal as exc:
            if exc.status in (404, 410):
                warnings.append(f"{what} {ident} no longer exists in Pipedrive")
                return None
            raise

    def open_file(self, file_id: Any) -> Iterator[bytes]:
        """The file's bytes as a stream, started now so a missing file fails before any upload."""
        chunks = self.client.download_file(int(file_id))
        first = next(chunks, b"")
        return itertools.chain([first], chunks)

"""Google fault knobs: what a contact sync must survive and a plain emulator never does.

Each is a count ("the next N ..."), set at runtime through `/_sandbox/faults` (and so the sandbox
page and `flask --app hub sandbox faults google name=N`), consumed one occurrence at a time:

- `empty_pages`: the next N connections.list pages that still have people to return come back
  empty with a nextPageToken for the same position (FACTS §5: only the absence of nextPageToken
  ends a listing).
- `expire_sync_token_mid_run`: the next N incremental listings lose their sync token after their
  first page: the next page answers EXPIRED_SYNC_TOKEN and the token is dead from then on.
- `batch_timeout_after_apply`: the next N batch create/update/delete calls are applied, then
  answered 504 DEADLINE_EXCEEDED, as a call whose answer was lost (the client cannot know).
- `batch_partial_reject`: the next N batch create/update calls reject their first contact with a
  per-contact INVALID_ARGUMENT in `contactErrors` and apply the others ("indexes not listed
  succeeded", FACTS §7; Google leaves this case undocumented, so the harsher reading is emulated).
- `rename_on_update`: the next N contact updates also give the contact a new resource name, as
  Google does when a profile gets linked (`previousResourceNames` in sync responses, FACTS §5).
- `late_echoes`: the next N contact writes through the API show up in sync responses one listing
  late ("writes may take several minutes to show up in sync responses", FACTS §5)."""
from __future__ import annotations

from typing import Any

from .errors import ApiError

KNOBS: dict[str, Any] = {"empty_pages": 0, "expire_sync_token_mid_run": 0, "batch_timeout_after_apply": 0,
                         "batch_partial_reject": 0, "rename_on_update": 0, "late_echoes": 0}
LABELS = {"empty_pages": "Next N listing pages come back empty (not the last)",
          "expire_sync_token_mid_run": "Next N incremental listings lose their sync token after page 1",
          "batch_timeout_after_apply": "Next N batch writes time out (504) after being applied",
          "batch_partial_reject": "Next N batch creates/updates refuse their first contact, apply the rest",
          "rename_on_update": "Next N contact updates give the contact a new resource name",
          "late_echoes": "Next N API writes show up in sync listings one listing late"}


def after_write(sb: Any, acct: dict, rec: dict, *, update: bool) -> None:
    """Per contact written through the API (under the state lock): late echo, new resource name."""
    if sb.faults.take("late_echoes"):
        rec["echo_hold"] = 1
    if update and sb.faults.take("rename_on_update"):
        sb._relink(acct, rec)


def release_echoes(acct: dict) -> None:
    """Held writes were left out of the sync listing that just started; re-stamp them after its
    cursor (which took the account's seq), so the next listing has them."""
    for rec in acct["people"].values():
        if rec.pop("echo_hold", None):
            acct["seq"] += 1
            rec["seq"] = acct["seq"]  # same content and etag: only its place in the change sequence moves


def expire_account_tokens(root: dict, acct: dict, now: float) -> None:
    for entry in root["sync_tokens"].values():
        if entry["account"] == acct["id"]:
            entry["expires_at"] = min(entry["expires_at"], now - 1)


def rejected_status() -> dict[str, Any]:
    return ApiError(400, "INVALID_ARGUMENT", "Request contains an invalid argument.").as_status()

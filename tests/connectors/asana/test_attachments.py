"""Attachments: streamed multipart uploads, byte-exact on arrival, the size limit, resends."""
from __future__ import annotations

import io
import random

import pytest

from hub.connectors.asana.client import AttachmentTooLarge, MultipartStream, StreamNotReplayable
from hub.errors import Fatal, Retriable

from .conftest import MAX_ATTACHMENT

SIZE = 3 * 1024 * 1024 + 12345  # a few MB, not a multiple of any chunk size


def payload(size: int = SIZE, seed: int = 5) -> bytes:
    return random.Random(seed).randbytes(size)


def chunks(data: bytes, step: int = 50_000, pulled: list[int] | None = None):
    """A generator-backed stream: bytes arrive in pieces, as from a CRM file download."""
    for i in range(0, len(data), step):
        if pulled is not None:
            pulled.append(i)
        yield data[i:i + step]


@pytest.fixture
def task(dana, ids):
    return dana.client.create_task(ids["org"], "Deal documents", projects=[ids["onboarding"]])


@pytest.mark.parametrize("known_size", [True, False], ids=["content-length", "chunked"])
def test_generator_upload_arrives_byte_for_byte(dana, emu, task, known_size):
    data = payload()
    sent: list[dict] = []
    dana.client.http.hooks["response"].append(lambda r, *a, **k: sent.append(dict(r.request.headers)))
    att = dana.client.upload_attachment(task["gid"], "Globex-MSA.pdf", chunks(data), "application/pdf",
                                        size=len(data) if known_size else None)
    assert att["resource_type"] == "attachment" and att["name"] == "Globex-MSA.pdf"
    assert att["size"] == len(data) and att["parent"]["gid"] == task["gid"]
    assert emu.attachment_bytes(att["gid"]) == data
    assert emu.get("attachments", att["gid"])["content_type"] == "application/pdf"
    if known_size:
        assert int(sent[0]["Content-Length"]) > len(data) and "Transfer-Encoding" not in sent[0]
    else:
        assert sent[0]["Transfer-Encoding"] == "chunked" and "Content-Length" not in sent[0]
    listed = list(dana.client.attachments(task["gid"]))
    assert [(a["gid"], a["size"]) for a in listed] == [(att["gid"], len(data))]


def test_file_object_upload_and_non_ascii_name(dana, emu, task):
    data = payload(200_000, seed=9)
    name = 'Angebot "Müller" – 🚀.pdf'
    att = dana.client.upload_attachment(task["gid"], name, io.BytesIO(data), None, size=len(data))
    assert emu.attachment_bytes(att["gid"]) == data
    assert att["name"] == name
    assert emu.get("attachments", att["gid"])["content_type"] == "application/octet-stream"


def test_upload_to_a_project(dana, emu, ids):
    att = dana.client.upload_attachment(ids["home"], "plan.txt", [b"line 1\n", b"line 2\n"], "text/plain")
    assert emu.attachment_bytes(att["gid"]) == b"line 1\nline 2\n"
    assert att["parent"]["resource_type"] == "project"


def test_body_is_produced_lazily_in_small_reads():
    """What urllib3 does with the body: read(blocksize) until empty. The source generator must be
    pulled only as far as the reads need, never drained up front."""
    data = payload(1_000_000)
    pulled: list[int] = []
    body = MultipartStream([("parent", "1")], "f.bin", chunks(data, 50_000, pulled), "application/octet-stream",
                           size=len(data), limit=MAX_ATTACHMENT)
    first = body.read(16384)
    assert len(first) == 16384 and len(pulled) == 1
    reads = list(iter(lambda: body.read(16384), b""))
    whole = first + b"".join(reads)
    assert len(whole) == body.len and len(pulled) == 20
    assert max(len(r) for r in reads) <= 16384
    assert whole.startswith(b"--" + body.boundary.encode()) and data in whole
    assert whole.endswith(f"\r\n--{body.boundary}--\r\n".encode())


def test_too_large_with_known_size_fails_before_uploading(dana, emu, task):
    def never():
        raise AssertionError("the stream must not be read")
        yield b""  # pragma: no cover

    with pytest.raises(AttachmentTooLarge) as err:
        dana.client.upload_attachment(task["gid"], "huge.iso", never(), "application/octet-stream",
                                      size=MAX_ATTACHMENT + 1)
    assert isinstance(err.value, Fatal) and err.value.size == MAX_ATTACHMENT + 1
    assert err.value.limit == MAX_ATTACHMENT
    assert not any(url.endswith("/attachments") for _, url in dana.calls)


def test_too_large_with_unknown_size_stops_mid_stream(dana, emu, task):
    pulled: list[int] = []
    big = chunks(b"\0" * (MAX_ATTACHMENT + 300_000), 100_000, pulled)
    with pytest.raises(AttachmentTooLarge):
        dana.client.upload_attachment(task["gid"], "huge.iso", big, "application/octet-stream")
    assert emu.attachments() == []
    assert len(pulled) == MAX_ATTACHMENT // 100_000 + 1  # stopped right at the limit
    # The client is still usable afterwards (the broken connection was discarded).
    assert dana.client.task(task["gid"])["gid"] == task["gid"]


def test_the_sandbox_limit_matches(dana, emu, task, connect, ids):
    """Disable the client check: the emulator refuses the same file with Asana's 400 (Fatal)."""
    unchecked = connect(ids["dana"], max_attachment_bytes=MAX_ATTACHMENT * 2).client
    with pytest.raises(Fatal) as err:
        unchecked.upload_attachment(task["gid"], "big.bin", chunks(b"\1" * (MAX_ATTACHMENT + 1)), None)
    assert err.value.status == 400 and "too large" in str(err.value)
    assert emu.attachments() == []


def test_declared_size_must_match_the_stream(dana, emu, task):
    with pytest.raises(Fatal, match="ended after 10 of 20"):
        dana.client.upload_attachment(task["gid"], "short.bin", [b"x" * 10], None, size=20)
    with pytest.raises(Fatal, match="longer than its declared 5"):
        dana.client.upload_attachment(task["gid"], "long.bin", [b"x" * 10], None, size=5)
    assert emu.attachments() == []


def test_seekable_upload_is_resent_after_429(dana, emu, task, faults):
    faults(burst_429=1, retry_after=2)
    data = payload(500_000, seed=3)
    att = dana.client.upload_attachment(task["gid"], "retry.bin", io.BytesIO(data), None, size=len(data))
    assert emu.attachment_bytes(att["gid"]) == data
    assert dana.sleeps == [2.0]


def test_seekable_upload_is_resent_after_token_refresh(dana, emu, task, server):
    import requests
    requests.post(f"{server.url}/_sandbox/tokens/expire", timeout=5).raise_for_status()
    data = payload(SIZE, seed=4)
    att = dana.client.upload_attachment(task["gid"], "after-401.bin", io.BytesIO(data), None)
    assert emu.attachment_bytes(att["gid"]) == data and dana.tokens.refreshes == 1


def test_generator_upload_is_not_replayed_but_handed_to_the_job(dana, emu, task, faults):
    faults(burst_429=1, retry_after=1)
    with pytest.raises(StreamNotReplayable) as err:
        dana.client.upload_attachment(task["gid"], "once.bin", chunks(payload(300_000)), None)
    assert isinstance(err.value, Retriable)
    assert dana.sleeps == [1.0]  # the 429 wait happened, then the resend was refused
    assert emu.attachments() == []

"""Signature v3 of HubSpot's webhook requests (FACTS §3): Base64(HMAC-SHA256(client secret,
method + URI + raw body + X-HubSpot-Request-Timestamp)), timestamps older than 5 minutes refused,
compared in constant time."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time

from ..contract.webhooks import RawRequest, Refused, Secrets
from .manifest import SIGNATURE_MAX_AGE_SECONDS

# HubSpot decodes these before signing the URI (FACTS §3 [U exact list])
_DECODE = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(",
           "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def signed_uri(url: str) -> str:
    out = url
    for encoded, plain in _DECODE.items():
        out = out.replace(encoded, plain).replace(encoded.lower(), plain)
    return out


def signature_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    message = method.upper().encode() + signed_uri(url).encode("utf-8") + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()).decode()


def verify(raw: RawRequest, secrets: Secrets, now: float | None = None) -> None:
    """Refused unless the v3 signature is HubSpot's for this method, URL, body and timestamp, and
    the timestamp is at most 5 minutes old (or ahead). `now` (epoch seconds): the hub's clock."""
    signature = (raw.header("x-hubspot-signature-v3") or "").strip()
    stamp = (raw.header("x-hubspot-request-timestamp") or "").strip()
    if not signature:
        raise Refused("X-HubSpot-Signature-v3: missing")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 16):
        raise Refused("X-HubSpot-Request-Timestamp: missing or not epoch milliseconds")
    moment = now if now is not None else (raw.received_at if raw.received_at is not None else time.time())
    if abs(moment * 1000 - int(stamp)) > SIGNATURE_MAX_AGE_SECONDS * 1000:
        raise Refused("X-HubSpot-Request-Timestamp: older than 5 minutes (or in the future)")
    secret = secrets.app_secret()
    if not secret:
        raise Refused("X-HubSpot-Signature-v3: the hub has no client secret for HubSpot to check it with")
    expected = signature_v3(secret, raw.method, raw.url, raw.body, stamp)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise Refused("X-HubSpot-Signature-v3: does not match")

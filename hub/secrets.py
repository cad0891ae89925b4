"""Secrets at rest: one key ring (MultiFernet), one table, a canary that proves the keys fit.

The first key encrypts, every key decrypts, so an operator rotates by putting a new key first,
running `flask --app hub secrets rotate`, and later dropping the old key. A wrong or missing key is
an error at start (the canary does not decrypt), never a silent plaintext fallback."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .config import ConfigError
from .logs import redactor
from .store import Database, Secret, utcnow
from .store.sql import insert_ignore

CANARY_REF = "_hub.canary"
CANARY_TEXT = "relay-hub key check"
KEY_FILE = "secret.keys"


class SecretKeyError(ConfigError):
    """The key ring cannot decrypt what is stored (wrong, missing or rotated-away key)."""


class KeyRing:
    def __init__(self, keys: list[str]):
        if not keys:
            raise ConfigError("HUB_SECRET_KEYS: no key given")
        fernets = []
        for index, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except (ValueError, TypeError):
                raise ConfigError(f"HUB_SECRET_KEYS: key #{index} is not a Fernet key "
                                  "(32 url-safe base64-encoded bytes; make one with `flask --app hub secrets new-key`)") from None
        self._multi = MultiFernet(fernets)
        self.size = len(fernets)

    def encrypt(self, value: str) -> bytes:
        return self._multi.encrypt(value.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self._multi.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken:
            raise SecretKeyError("a stored secret cannot be decrypted with HUB_SECRET_KEYS "
                                 "(the key that encrypted it is missing)") from None

    def rotate(self, token: bytes) -> bytes:
        try:
            return self._multi.rotate(bytes(token))
        except InvalidToken:
            raise SecretKeyError("a stored secret cannot be decrypted with HUB_SECRET_KEYS") from None


def parse_keys(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def load_key_ring(secret_keys: str, instance_path: Path, *, allow_generate: bool) -> KeyRing:
    """Keys from configuration, else (embedded mode only) from a key file generated once."""
    if secret_keys.strip():
        return KeyRing(parse_keys(secret_keys))
    path = Path(instance_path) / KEY_FILE
    if path.exists():
        keys = parse_keys(path.read_text())
        if not keys:
            raise ConfigError(f"HUB_SECRET_KEYS: key file {path} is empty")
        return KeyRing(keys)
    if not allow_generate:
        raise ConfigError("HUB_SECRET_KEYS: required with PostgreSQL (comma-separated Fernet keys, the first encrypts; "
                          "make one with `flask --app hub secrets new-key`)")
    write_key_file(path, [Fernet.generate_key().decode()])
    return KeyRing(parse_keys(path.read_text()))


def write_key_file(path: Path, keys: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as fh:
        fh.write(",".join(keys) + "\n")
    os.replace(tmp, path)


class SecretStore:
    """Encrypted values by reference (e.g. `conn:12:access_token`); decrypted values are redacted from logs."""

    def __init__(self, ring: KeyRing):
        self.ring = ring

    def put(self, session: Session, ref: str, value: str) -> None:
        redactor.add(value)
        row = session.scalar(select(Secret).where(Secret.ref == ref))
        if row is None:
            session.add(Secret(ref=ref, ciphertext=self.ring.encrypt(value)))
        else:
            row.ciphertext = self.ring.encrypt(value)
            row.updated_at = utcnow()

    def get(self, session: Session, ref: str) -> str | None:
        row = session.scalar(select(Secret).where(Secret.ref == ref))
        if row is None:
            return None
        value = self.ring.decrypt(row.ciphertext)
        redactor.add(value)
        return value

    def reveal(self, ciphertext: bytes) -> str:
        """A stored ciphertext read without `get` (a Core query of several at once), decrypted and
        redacted from logs as `get` does."""
        value = self.ring.decrypt(ciphertext)
        redactor.add(value)
        return value

    def delete(self, session: Session, ref: str) -> None:
        session.execute(delete(Secret).where(Secret.ref == ref))

    def delete_prefix(self, session: Session, prefix: str) -> int:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return session.execute(delete(Secret).where(Secret.ref.like(escaped + "%", escape="\\"))).rowcount

    def verify(self, db: Database) -> None:
        """Create the canary on first start; afterwards it must decrypt with the configured keys.
        Processes starting together on a fresh database race to create it: the insert is
        ON CONFLICT DO NOTHING, and every process then checks the one canary that was stored."""
        with db.begin() as session:
            row = session.scalar(select(Secret).where(Secret.ref == CANARY_REF))
            if row is None:
                now = utcnow()
                if insert_ignore(session, Secret, {"ref": CANARY_REF, "ciphertext": self.ring.encrypt(CANARY_TEXT),
                                                   "created_at": now, "updated_at": now}, ["ref"]) is not None:
                    return
                row = session.scalar(select(Secret).where(Secret.ref == CANARY_REF))
            if self.ring.decrypt(row.ciphertext) != CANARY_TEXT:
                raise SecretKeyError("HUB_SECRET_KEYS: the key check failed")

    def rotate_all(self, db: Database, batch: int = 500) -> int:
        """Re-encrypt every secret with the first key; batches keep transactions short."""
        done, last_id = 0, 0
        while True:
            with db.begin() as session:
                rows = session.scalars(select(Secret).where(Secret.id > last_id).order_by(Secret.id).limit(batch)).all()
                if not rows:
                    return done
                for row in rows:
                    row.ciphertext = self.ring.rotate(row.ciphertext)
                    row.updated_at = utcnow()
                    last_id = row.id
                done += len(rows)

"""API keys and temporary tokens kept in the database: created, listed, revoked, looked up by hash.

Keys and tokens are stored as SHA-256 digests, never as themselves. An unkeyed fast hash is safe
here because both are 32 random bytes (256 bits): nothing can be guessed or brute-forced from the
digest, unlike a password. It also needs no shared secret, so a key created by the CLI on one
machine is found by every server sharing the database, whatever its `secret_key`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from voxscope.storage.database import Database
from voxscope.storage.tables import ApiKey, ApiToken, utcnow

KEY_PREFIX = "sk-"
TOKEN_PREFIX = "st-"
LIMIT_FIELDS = ("max_sessions", "rps", "max_queued_tasks", "daily_audio_hours")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_owner(key_id: str) -> str:
    """The owner of a database key's data: from its id, so it never changes with the key."""
    return f"key-{key_id}"


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    created: datetime
    last_used: datetime | None
    expires: datetime | None
    revoked: datetime | None
    max_sessions: int | None
    rps: float | None
    max_queued_tasks: int | None
    daily_audio_hours: float | None

    @property
    def owner(self) -> str:
        return key_owner(self.id)

    def active(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.revoked is None and (self.expires is None or self.expires > now)

    @classmethod
    def of(cls, row: ApiKey) -> KeyRecord:
        return cls(id=row.id, name=row.name, created=row.created, last_used=row.last_used,
                   expires=row.expires, revoked=row.revoked, max_sessions=row.max_sessions,
                   rps=row.rps, max_queued_tasks=row.max_queued_tasks,
                   daily_audio_hours=row.daily_audio_hours)


@dataclass(frozen=True)
class TokenRecord:
    owner: str
    key_id: str | None
    expires: datetime


class KeyStore:
    """The api_keys and api_tokens tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- keys ------------------------------------------------------------------------------------
    def create(self, name: str, expires: datetime | None = None, **limits) -> tuple[KeyRecord, str]:
        """A new key: its record and the key itself (shown once; only its digest is stored)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(id=secrets.token_hex(8), name=name, key_hash=digest(key), expires=expires,
                     created=utcnow(), **{k: limits.get(k) for k in LIMIT_FIELDS})
        with self.db.session() as s:
            s.add(row)
        return KeyRecord.of(row), key

    def list(self) -> list[KeyRecord]:
        with self.db.session() as s:
            return [KeyRecord.of(r) for r in s.scalars(select(ApiKey).order_by(ApiKey.created))]

    def get(self, key_id: str) -> KeyRecord | None:
        with self.db.session() as s:
            row = s.get(ApiKey, key_id)
            return KeyRecord.of(row) if row else None

    def find(self, key: str) -> KeyRecord | None:
        with self.db.session() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.key_hash == digest(key)))
            return KeyRecord.of(row) if row else None

    def revoke(self, key_id: str) -> bool:
        with self.db.session() as s:
            row = s.get(ApiKey, key_id)
            if row is None:
                return False
            row.revoked = row.revoked or utcnow()
            # its tokens die with it (they are also checked against the key on use)
            s.execute(delete(ApiToken).where(ApiToken.key_id == key_id))
            return True

    def update(self, key_id: str, **changes) -> KeyRecord | None:
        """Set name, expires or limits (a limit of 0 or less clears it: no limit)."""
        with self.db.session() as s:
            row = s.get(ApiKey, key_id)
            if row is None:
                return None
            for field, value in changes.items():
                if field in LIMIT_FIELDS and value is not None and value <= 0:
                    value = None
                setattr(row, field, value)
            return KeyRecord.of(row)

    def any_created(self) -> bool:
        """Whether any key was ever created (revoked and expired ones count: revoking the last
        key must lock the server, not open it)."""
        with self.db.session() as s:
            return s.scalar(select(ApiKey.id).limit(1)) is not None

    def touch(self, key_id: str) -> None:
        with self.db.session() as s:
            row = s.get(ApiKey, key_id)
            if row is not None:
                row.last_used = utcnow()

    # -- temporary tokens ------------------------------------------------------------------------
    def mint(self, owner: str, key_id: str | None, ttl_s: int) -> tuple[str, datetime]:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        expires = now + timedelta(seconds=ttl_s)
        with self.db.session() as s:
            # expired tokens are useless; dropping them here keeps the table small
            s.execute(delete(ApiToken).where(ApiToken.expires < now - timedelta(minutes=5)))
            s.add(ApiToken(token_hash=digest(token), owner=owner, key_id=key_id, expires=expires))
        return token, expires

    def find_token(self, token: str) -> TokenRecord | None:
        with self.db.session() as s:
            row = s.get(ApiToken, digest(token))
            return TokenRecord(row.owner, row.key_id, row.expires) if row else None

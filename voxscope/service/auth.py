"""Authentication: who is calling (a Principal), from the credentials a request carries.

Today the only backend is the static key list of the config (`KeyChecker`). Keys kept in the
database and temporary tokens are further backends of the same `Authenticator` shape; the limits
and usage of a key hang off its Principal.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from voxscope.errors import INVALID_API_KEY, UNAUTHORIZED_MESSAGE, ServiceError
from voxscope.service.limits import Limits


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    owner: str  # whose tasks, vocabularies and uploads these are (never the key itself)
    key_id: str | None = None  # the database key (its limits); None: a config key or open mode
    temporary: bool = False  # authenticated by a temporary token (st-...), not a permanent key
    limits: Limits | None = None  # the database key's limits (its tokens share them)


class Authenticator(Protocol):
    @property
    def enabled(self) -> bool: ...

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller, or ServiceError(InvalidApiKey, 401)."""
        ...


def bearer_key(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer <key>` (scheme matched case-insensitively)."""
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, key = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


class KeyChecker:
    """The static key list (config / VOXSCOPE_API_KEYS), an Authenticator.

    With no keys configured every key is accepted (local development mode)."""

    def __init__(self, keys: list[str]) -> None:
        # Dropping a blank key would silently leave no keys, i.e. open access (Settings refuses
        # them at start; this guards any other caller).
        if any(not k.strip() for k in keys):
            raise ValueError("an API key is empty or whitespace")
        self._keys = [k.encode() for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def allows(self, key: str | None) -> bool:
        if not self._keys:
            return True
        if not key:
            return False
        candidate = key.encode()
        # compare against every key so timing does not reveal which prefix matched
        ok = False
        for k in self._keys:
            ok |= hmac.compare_digest(k, candidate)
        return ok

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        key = bearer_key(headers)
        if not self.allows(key):
            raise ServiceError(INVALID_API_KEY, UNAUTHORIZED_MESSAGE, 401)
        return Principal(self.owner(key))

    def has_owner(self, owner: str) -> bool:
        """Whether one of the configured keys is `owner`'s (a token minted with a config key
        stops when that key leaves the config)."""
        return any(hmac.compare_digest(self.owner(k.decode()), owner) for k in self._keys)

    def owner(self, key: str | None) -> str:
        """Who stored data belongs to: a hash of the key (rows never hold keys); with no keys
        configured everyone is the same (empty) owner."""
        if not self._keys or not key:
            return ""
        return hashlib.sha256(key.encode()).hexdigest()[:32]

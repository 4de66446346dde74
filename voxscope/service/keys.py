"""The server's Authenticator: config keys, database keys and temporary tokens, with a short cache.

Lookups are cached for `ttl_s` (≤ 5 s): auth costs a dict lookup on the hot path, and a key
revoked in the shared database stops working on every server within that time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC

from voxscope.errors import INVALID_API_KEY, INVALID_PARAMETER, UNAUTHORIZED_MESSAGE, ServiceError
from voxscope.service.auth import KeyChecker, Principal, bearer_key
from voxscope.service.limits import Limiter, Limits, LocalLimiter, rate_refused
from voxscope.storage.api_keys import TOKEN_PREFIX, KeyRecord, KeyStore, digest
from voxscope.storage.tables import utcnow

log = logging.getLogger(__name__)

MAX_TOKEN_TTL_S = 1800  # DashScope's bounds for expire_in_seconds
DEFAULT_TOKEN_TTL_S = 60
WS_TOKEN_PARAM = "token"  # the query parameter of a WebSocket URL carrying a temporary token
_MAX_CACHED = 10_000  # bounded: random keys sent by a stranger must not grow memory
_TOUCH_EVERY_S = 60.0  # last_used is written at most this often per key and process


def _unauthorized(message: str = UNAUTHORIZED_MESSAGE) -> ServiceError:
    return ServiceError(INVALID_API_KEY, message, 401)


class _TtlCache:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._items: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load):
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            if len(self._items) >= _MAX_CACHED:
                self._items.clear()
            self._items[key] = (now + self.ttl_s, value)
        return value


class KeyRing:
    """An Authenticator trying, in order: temporary tokens, config keys, database keys.

    Open (no-key) mode holds while the config has no keys and no key was ever created in the
    database (once one was, the server stays keyed, even with every key revoked)."""

    def __init__(self, config: KeyChecker, store: KeyStore, ttl_s: float = 2.0,
                 limiter: Limiter | None = None) -> None:
        self.config = config
        self.store = store
        self.limiter = limiter or LocalLimiter()
        self._cache = _TtlCache(min(ttl_s, 5.0))
        self._touched: dict[str, float] = {}

    # -- the Authenticator protocol --------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.config.enabled or self._cache.get("\0any", self._any_created)

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        principal = self.resolve(bearer_key(headers))
        if principal is None:
            raise _unauthorized()
        return self._rate_checked(principal)

    # -- helpers of the endpoints ----------------------------------------------------------------
    def allows(self, key: str | None) -> bool:
        return self.resolve(key) is not None

    def admits(self, headers: Mapping[str, str]) -> bool:
        """Whether the request's `Authorization` holds a valid key or token (any, in open mode):
        the check of pages that show more to a caller but count no limits (/health, the docs)."""
        return self.allows(bearer_key(headers))

    def resolve(self, key: str | None) -> Principal | None:
        """The caller holding `key` (a key or a token), or None."""
        if not self.enabled:
            return Principal("")  # local development mode: everyone is the same (empty) owner
        if not key:
            return None
        if key.startswith(TOKEN_PREFIX):
            return self._token(key)
        # (KeyChecker accepts anything when it has no keys: ask it only when it has some)
        if self.config.enabled and self.config.allows(key):
            return Principal(self.config.owner(key))
        record = self._cache.get("k" + digest(key), lambda: self.store.find(key))
        if record is None or not record.active():
            return None
        self._touch(record.id)
        return Principal(record.owner, key_id=record.id, limits=_limits(record))

    def authenticate_ws(self, headers: Mapping[str, str],
                        query: Mapping[str, str]) -> tuple[Principal, str | None]:
        """The caller of a WebSocket upgrade and the subprotocol to answer with (or None).

        Browsers cannot set headers on a WebSocket, so besides `Authorization` a temporary token
        is taken from the `?token=` query parameter or as a `Sec-WebSocket-Protocol` value. A
        permanent key is never accepted there: URLs end up in logs and histories."""
        if bearer_key(headers) is not None or not self.enabled:
            return self.authenticate(headers), None
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
        subprotocol = next((p for p in offered if p.startswith(TOKEN_PREFIX)), None)
        candidate = query.get(WS_TOKEN_PARAM) or subprotocol
        if not candidate:
            raise _unauthorized()
        if not candidate.startswith(TOKEN_PREFIX):
            raise _unauthorized("Only a temporary token (POST /api/v1/tokens) may be sent in "
                                "the URL or as a subprotocol; send an API key in the "
                                "Authorization header.")
        principal = self._token(candidate)
        if principal is None:
            raise _unauthorized()
        return self._rate_checked(principal), subprotocol if candidate == subprotocol else None

    def mint(self, headers: Mapping[str, str], ttl_s: int) -> tuple[str, int]:
        """A temporary token for the caller's permanent key: (token, expires_at unix seconds)."""
        if not 1 <= ttl_s <= MAX_TOKEN_TTL_S:
            raise ServiceError(INVALID_PARAMETER, f"expire_in_seconds must be between 1 and "
                               f"{MAX_TOKEN_TTL_S}, got {ttl_s}", 400, param="expire_in_seconds")
        principal = self.authenticate(headers)
        if principal.temporary:
            # a token minting tokens would outlive its own expiry without bound
            raise _unauthorized("A temporary token cannot create tokens; use an API key.")
        token, expires = self.store.mint(principal.owner, principal.key_id, ttl_s)
        return token, int(expires.replace(tzinfo=UTC).timestamp())

    # -- internals -------------------------------------------------------------------------------
    def _rate_checked(self, principal: Principal) -> Principal:
        rps = principal.limits.rps if principal.limits else None
        if rps and principal.key_id and not self.limiter.hit(principal.key_id, rps):
            raise rate_refused(rps)
        return principal

    def _token(self, token: str) -> Principal | None:
        record = self._cache.get("t" + digest(token), lambda: self.store.find_token(token))
        if record is None or record.expires <= utcnow():
            return None
        if not record.owner:  # minted in open mode: worthless once the server has keys
            return None
        if record.key_id is not None:  # a revoked or expired key's tokens stop with it
            key = self._key(record.key_id)
            if key is None or not key.active():
                return None
            return Principal(record.owner, key_id=record.key_id, temporary=True,
                             limits=_limits(key))
        if not self.config.has_owner(record.owner):  # its config key was removed since
            return None
        return Principal(record.owner, temporary=True)

    def _key(self, key_id: str) -> KeyRecord | None:
        return self._cache.get("i" + key_id, lambda: self.store.get(key_id))

    def _any_created(self) -> bool:
        try:
            return self.store.any_created()
        except Exception:  # noqa: BLE001 - a database outage must not open the server
            log.warning("cannot read API keys from the database", exc_info=True)
            return True

    def _touch(self, key_id: str) -> None:
        now = time.monotonic()
        if now - self._touched.get(key_id, -_TOUCH_EVERY_S) < _TOUCH_EVERY_S:
            return
        self._touched[key_id] = now

        def write() -> None:
            try:
                self.store.touch(key_id)
            except Exception:  # noqa: BLE001 - last_used is informative only
                log.debug("could not record last use of key %s", key_id, exc_info=True)

        # off the request path: a busy database must not slow authentication
        threading.Thread(target=write, name="voxscope-key-touch", daemon=True).start()


def _limits(record: KeyRecord) -> Limits | None:
    limits = Limits(record.max_sessions, record.rps, record.max_queued_tasks,
                    record.daily_audio_hours)
    return limits if limits != Limits() else None

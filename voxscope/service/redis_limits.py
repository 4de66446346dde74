"""Per-key limits shared by every server through Redis (the `Limiter` used when `queue_url` is
`redis://…`): requests per second and sessions at once hold across all servers.

- Requests per second: a one-second sliding window in a sorted set per key (members scored by
  Redis' own clock), trimmed, counted and added in one Lua script, so two servers never both see
  room for the last request.
- Sessions at once: a sorted set per key of session ids scored by their lease's expiry. A server
  renews the leases of its running sessions every `lease_s / 3`; a server killed with `kill -9`
  stops renewing and its sessions drop out on their own after `lease_s`. (INCR/DECR plus a
  per-server set cleaned at start would leak a dead server's sessions until that same server
  starts again, which a replaced machine never does.)
- Redis unreachable: the limiter falls back to this process' `LocalLimiter` (limits then hold per
  server, not across them) and logs a warning, rather than refusing every limited key's requests;
  it tries Redis again after `RETRY_S`. Sessions remember which side holds them, so each is
  released where it was counted.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from voxscope.service.limits import LocalLimiter

log = logging.getLogger(__name__)

PREFIX = "voxscope:limits:"
RETRY_S = 5.0  # after a Redis failure, go local this long before trying Redis again
SOCKET_TIMEOUT_S = 0.5  # limits are checked on the request path (some on the event loop)

# KEYS[1] the window; ARGV: window ms, allowed requests, a unique member. Redis' clock (TIME) is
# the one clock all servers share. A refused request is not counted: the key recovers by itself.
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS[1] the key's sessions; ARGV: lease ms, limit, session id. Expired leases are dropped first.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1]))
return 1
"""

# KEYS: the sessions sets; ARGV: lease ms, then one session id per key. XX: a session released
# meanwhile (ZREM) is not brought back by a renewal already under way (the price: after a Redis
# restart lost the sets, running sessions go uncounted until they end).
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', key, 2 * lease)
end
return #KEYS
"""


class RedisLimiter:
    """A `Limiter` whose counters live in Redis, shared by every server using the same Redis."""

    WINDOW_S = 1.0

    def __init__(self, url: str, lease_s: float = 30.0,
                 client: redis.Redis | None = None) -> None:
        self.lease_s = lease_s
        self._redis = client or redis.Redis.from_url(
            url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0))  # no retries: a down Redis must not stall requests
        self._hit = self._redis.register_script(_HIT)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._local = LocalLimiter()
        self._lock = threading.Lock()
        # key_id -> the sessions this process holds: a Redis session id, or None when counted
        # locally during an outage. Sessions of one key are interchangeable, so release pops any.
        self._held: dict[str, list[str | None]] = {}
        self._down_until = 0.0
        self._prefix = uuid.uuid4().hex[:12]  # this process: session ids unique across servers
        self._seq = 0
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_loop, name="voxscope-limits-lease",
                                         daemon=True)
        self._renewer.start()

    # -- the Limiter protocol --------------------------------------------------------------------
    def hit(self, key_id: str, rps: float) -> bool:
        if self._usable():
            try:
                allowed = max(1, int(rps * self.WINDOW_S))
                return bool(self._hit(keys=[f"{PREFIX}rps:{key_id}"],
                                      args=[int(self.WINDOW_S * 1000), allowed, self._new_id()]))
            except redis.RedisError as exc:
                self._went_down(exc)
        return self._local.hit(key_id, rps)

    def acquire_session(self, key_id: str, limit: int) -> bool:
        if self._usable():
            session = self._new_id()
            try:
                ok = bool(self._acquire(keys=[self._sessions_key(key_id)],
                                        args=[int(self.lease_s * 1000), limit, session]))
            except redis.RedisError as exc:
                self._went_down(exc)
            else:
                if ok:
                    with self._lock:
                        self._held.setdefault(key_id, []).append(session)
                return ok
        if not self._local.acquire_session(key_id, limit):
            return False
        with self._lock:
            self._held.setdefault(key_id, []).append(None)
        return True

    def release_session(self, key_id: str) -> None:
        with self._lock:
            held = self._held.get(key_id)
            if not held:
                return
            session = held.pop()
            if not held:
                del self._held[key_id]
        if session is None:
            self._local.release_session(key_id)
            return
        try:
            self._redis.zrem(self._sessions_key(key_id), session)
        except redis.RedisError:
            # Not lost: no one renews it any more, so its lease runs out within lease_s.
            log.warning("could not release a session of key %s in Redis; its lease expires in "
                        "%gs", key_id, self.lease_s)

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        self._stop.set()

    # -- internals -------------------------------------------------------------------------------
    def _sessions_key(self, key_id: str) -> str:
        return f"{PREFIX}sessions:{key_id}"

    def _new_id(self) -> str:
        with self._lock:
            self._seq += 1
            return f"{self._prefix}-{self._seq}"

    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _went_down(self, exc: Exception) -> None:
        if self._usable():
            log.warning("Redis is unreachable (%s): per-key limits hold in this server only for "
                        "the next %gs", exc, RETRY_S)
        self._down_until = time.monotonic() + RETRY_S

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            with self._lock:
                pairs = [(key_id, s) for key_id, held in self._held.items() for s in held if s]
            if not pairs:
                continue
            try:
                self._renew(keys=[self._sessions_key(k) for k, _ in pairs],
                            args=[int(self.lease_s * 1000), *(s for _, s in pairs)])
            except redis.RedisError as exc:
                log.warning("could not renew %d session leases in Redis: %s", len(pairs), exc)

"""`RedisLimiter` in-process against a real Redis: two limiters (two servers) share one count of
sessions and one request window; a limiter that stops renewing (a dead server) loses its sessions
when their lease ends; sessions taken while Redis was unreachable are counted and released
locally. Skipped when redis-server is missing."""

from __future__ import annotations

import time

from tests.files.test_scale_out import redis_port  # noqa: F401 - the module's Redis
from tests.support import free_port
from voxscope.service.redis_limits import RedisLimiter

BOUND_S = 30.0  # generous on a shared machine


def _pair(port: int, lease_s: float = 30.0) -> tuple[RedisLimiter, RedisLimiter]:
    url = f"redis://127.0.0.1:{port}/0"
    return RedisLimiter(url, lease_s=lease_s), RedisLimiter(url, lease_s=lease_s)


def test_sessions_and_rate_are_shared(redis_port):  # noqa: F811
    a, b = _pair(redis_port)
    assert a.acquire_session("shared", 2) and b.acquire_session("shared", 2)
    assert not a.acquire_session("shared", 2) and not b.acquire_session("shared", 2)
    assert a.acquire_session("another-key", 1)  # other keys have their own count
    b.release_session("shared")
    assert a.acquire_session("shared", 2)
    b.release_session("never-held")  # harmless
    # 3 requests a second over both: the fourth (on either) is refused within the window
    window = [a.hit("rate", 3), b.hit("rate", 3), a.hit("rate", 3), b.hit("rate", 3)]
    assert window.count(True) == 3 or window == [True, True, True, True], window
    for lim in (a, b):
        lim.close()


def test_a_dead_limiters_sessions_expire_and_a_live_one_renews(redis_port):  # noqa: F811
    alive, dead = _pair(redis_port, lease_s=2.0)
    assert alive.acquire_session("lease", 2) and dead.acquire_session("lease", 2)
    dead.close()  # stops renewing, as a killed server would
    deadline = time.monotonic() + BOUND_S
    while not alive.acquire_session("lease", 2):
        assert time.monotonic() < deadline, "the dead limiter's session never expired"
        time.sleep(0.2)
    time.sleep(3 * alive.lease_s)  # both of alive's sessions outlive the lease: renewed
    assert not alive.acquire_session("lease", 2)
    alive.close()


def test_unreachable_redis_counts_locally():
    lim = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0")
    assert lim.acquire_session("k", 1)
    assert not lim.acquire_session("k", 1)
    lim.release_session("k")
    assert lim.acquire_session("k", 1)
    assert lim.hit("r", 1) and not lim.hit("r", 1)
    lim.close()

"""Keys and tokens shared through PostgreSQL by two servers (different data dirs and secrets):
a key created with `voxscope keys create` against the shared `database_url` works on both, a token
minted on one works on the other, and a revoked key (and its token) stops on both; revoking the
only key leaves both servers keyed, not open. Skipped when
the PostgreSQL server binaries are missing."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import FAST_ENV
from tests.files.test_postgres import pg_url  # noqa: F401 - the module's PostgreSQL cluster
from tests.operations.helpers import create_key, key_id, keys_cli
from tests.support import ServerProcess

POLL_BOUND_S = 30.0  # generous on a shared machine; the server's promise is 5 s


@pytest.fixture(scope="module")
def pair(pg_url):  # noqa: F811 - the imported fixture
    servers = [ServerProcess(env=FAST_ENV, config={"server": {"database_url": pg_url}}).start()
               for _ in range(2)]
    yield servers
    for s in servers:
        s.stop()


def _status(server, key: str) -> int:
    return httpx.get(f"{server.http}/v1/models", headers={"Authorization": f"Bearer {key}"},
                     timeout=30).status_code


def test_key_and_token_work_across_servers_and_revoke_on_both(pair):
    a, b = pair
    key = create_key(a, "shared")
    for server in pair:
        deadline = time.monotonic() + POLL_BOUND_S
        while _status(server, key) != 200:  # each server turns keyed within its cache time
            assert time.monotonic() < deadline, "key not accepted"
            time.sleep(0.25)
    minted = httpx.post(f"{a.http}/api/v1/tokens", headers={"Authorization": f"Bearer {key}"},
                        timeout=30)
    assert minted.status_code == 200, minted.text
    token = minted.json()["token"]
    assert _status(b, token) == 200  # minted on a, used on b
    assert keys_cli(b, "revoke", key_id(b, "shared")).returncode == 0  # from the other side
    revoked_at = time.monotonic()
    for server in pair:
        for credential in (key, token):
            while _status(server, credential) != 401:
                assert time.monotonic() - revoked_at < POLL_BOUND_S, "still accepted"
                time.sleep(0.25)
    # the only key revoked: the servers stay keyed (locked), they do not fall back to open mode
    for server in pair:
        assert httpx.get(f"{server.http}/v1/models", timeout=30).status_code == 401

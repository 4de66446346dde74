"""/health and the API docs judge a caller by the KeyRing (`KeyRing.admits`): a key made with
`voxscope keys create` or its temporary token sees /health's details and the docs, a caller
without one sees liveness only and a 401 on the docs."""

from __future__ import annotations

import httpx
import pytest

from tests.operations.helpers import create_key, wait_keyed
from tests.support import ServerProcess


@pytest.fixture(scope="module")
def srv():
    server = ServerProcess(config={"server": {"workers": 0}}).start()
    yield server
    server.stop()


def test_db_key_and_token_see_health_details_and_docs(srv):
    key = create_key(srv, "operator")
    wait_keyed(srv)
    assert srv.health() == {"status": "ok"}  # no key: liveness only
    assert "max_sessions" in srv.health(key)
    token = httpx.post(f"{srv.http}/api/v1/tokens", headers={"Authorization": f"Bearer {key}"},
                       timeout=30).json()["token"]
    assert "max_sessions" in srv.health(token)
    assert httpx.get(f"{srv.http}/docs", timeout=30).status_code == 401
    assert httpx.get(f"{srv.http}/docs", headers={"Authorization": f"Bearer {key}"},
                     timeout=30).status_code == 200

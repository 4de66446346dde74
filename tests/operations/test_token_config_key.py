"""A temporary token minted with a config key stops working once that key is removed from the
config (a restart with other keys), as a database key's tokens stop when the key is revoked."""

from __future__ import annotations

import httpx

from tests.support import ServerProcess

OLD_KEY = "config-key-that-will-be-removed-0001"
NEW_KEY = "config-key-that-replaces-it-000000002"


def _status(server: ServerProcess, credential: str) -> int:
    return httpx.get(f"{server.http}/v1/models",
                     headers={"Authorization": f"Bearer {credential}"}, timeout=30).status_code


def test_token_of_a_removed_config_key_is_refused():
    server = ServerProcess(config={"server": {"api_keys": [OLD_KEY], "workers": 0}}).start()
    try:
        minted = httpx.post(f"{server.http}/api/v1/tokens?expire_in_seconds=1800",
                            headers={"Authorization": f"Bearer {OLD_KEY}"}, timeout=30)
        assert minted.status_code == 200, minted.text
        token = minted.json()["token"]
        assert _status(server, token) == 200
        server.stop()
        server.config = {"server": {"api_keys": [NEW_KEY], "workers": 0}}  # the key rotated out
        server.start()
        assert _status(server, NEW_KEY) == 200
        refused = httpx.get(f"{server.http}/v1/models",
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "invalid_api_key", refused.json()
        dashscope_shape = httpx.get(f"{server.http}/api/v1/tasks/any",
                                    headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert dashscope_shape.status_code == 401
        assert dashscope_shape.json()["code"] == "InvalidApiKey", dashscope_shape.json()
    finally:
        server.stop()

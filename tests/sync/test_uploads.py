"""The upload flow by hand (REST §4): policy, policy-signed multipart POST, then `oss://` use.

Raw HTTP (httpx) so every refusal can be provoked: forged, tampered and expired policies (the
package's server signs with a known secret, so the test can sign an already expired policy with
`voxscope.protocols.uploads.make_policy`), keys outside `upload_dir` or with `..`, files over the
policy's size cap, overwriting, and a policy request without action.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.sync.conftest import SECRET
from tests.sync.helpers import MODEL, clip_bytes, msgs
from voxscope.protocols.uploads import make_policy
from voxscope.storage.signing import Signer

CLIP = "en_beckett"


def get_policy(server, **params) -> dict:
    resp = httpx.get(server.http + "/api/v1/uploads", headers={"Authorization": "Bearer k"}, timeout=10,
                     params={"action": "getPolicy", "model": MODEL, **params})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["request_id"]
    return body["data"]


def post_upload(server, cert: dict, key: str, data: bytes, **override) -> httpx.Response:
    form = {"OSSAccessKeyId": cert["oss_access_key_id"], "Signature": cert["signature"],
            "policy": cert["policy"], "key": key, "x-oss-object-acl": cert["x_oss_object_acl"],
            "x-oss-forbid-overwrite": cert["x_oss_forbid_overwrite"], "success_action_status": "200",
            "x-oss-content-type": "audio/x-wav", **override}
    return httpx.post(cert["upload_host"], data=form, files={"file": ("a.wav", data)}, timeout=30)


def refused(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"] == code and body["message"], body


@pytest.mark.timeout(60)
def test_policy_shape_and_manual_flow(sync_server):
    cert = get_policy(sync_server)
    for field in ("policy", "signature", "upload_dir", "upload_host", "oss_access_key_id",
                  "x_oss_object_acl", "x_oss_forbid_overwrite"):
        assert isinstance(cert[field], str) and cert[field], field
    assert cert["upload_host"] == sync_server.http + "/api/v1/uploads/oss"
    assert cert["expire_in_seconds"] == 300 and cert["max_file_size_mb"] == 100
    doc = json.loads(base64.b64decode(cert["policy"]))
    assert doc["upload_dir"] == cert["upload_dir"] and doc["max_bytes"] == 100 << 20
    assert get_policy(sync_server)["upload_dir"] != cert["upload_dir"]  # fresh, unguessable dirs

    key = f"{cert['upload_dir']}/beckett.wav"
    resp = post_upload(sync_server, cert, key, clip_bytes(CLIP))
    assert resp.status_code == 200, resp.text
    stored = sync_server.workdir / "data" / "uploads" / key
    assert stored.read_bytes() == clip_bytes(CLIP)
    # overwriting is refused (x-oss-forbid-overwrite: true, what the SDK sends)
    refused(post_upload(sync_server, cert, key, b"other"), 409, "FileAlreadyExists")
    assert stored.read_bytes() == clip_bytes(CLIP)

    gen = httpx.post(sync_server.http + "/api/v1/services/aigc/multimodal-generation/generation",
                     json={"model": MODEL, "input": {"messages": msgs("oss://" + key)}},
                     headers={"Authorization": "Bearer k", "X-DashScope-OssResourceResolve": "enable"},
                     timeout=60)
    assert gen.status_code == 200, gen.text
    text = gen.json()["output"]["choices"][0]["message"]["content"][0]["text"]
    assert "fail better" in text.lower(), text


@pytest.mark.timeout(30)
def test_forged_tampered_expired_policies(sync_server):
    cert = get_policy(sync_server)
    key = f"{cert['upload_dir']}/x.wav"
    data = clip_bytes(CLIP)
    refused(post_upload(sync_server, cert, key, data, Signature="AAAA" + cert["signature"][4:]),
            403, "AccessDenied")
    refused(post_upload(sync_server, cert, key, data, Signature=""), 403, "AccessDenied")
    # a policy for a bigger size or another folder, keeping the old signature
    doc = json.loads(base64.b64decode(cert["policy"]))
    tampered = base64.b64encode(json.dumps({**doc, "upload_dir": "dashscope-instant"}).encode()).decode()
    refused(post_upload(sync_server, cert, "dashscope-instant/x.wav", data, policy=tampered),
            403, "AccessDenied")
    # a correctly signed but expired policy (the test knows the server's secret)
    old_policy, old_sig = make_policy(Signer(SECRET.encode()), cert["upload_dir"], 100 << 20, ttl_s=-5)
    resp = post_upload(sync_server, cert, key, data, policy=old_policy, Signature=old_sig)
    refused(resp, 403, "AccessDenied")
    assert "expired" in resp.json()["message"]
    # the same policy, still valid, is accepted: the refusal above was the expiry
    ok_policy, ok_sig = make_policy(Signer(SECRET.encode()), cert["upload_dir"], 100 << 20, ttl_s=60)
    assert post_upload(sync_server, cert, key, data, policy=ok_policy, Signature=ok_sig).status_code == 200
    assert not (sync_server.workdir / "data" / "uploads" / "dashscope-instant" / "x.wav").exists()


@pytest.mark.timeout(30)
def test_keys_and_sizes(sync_server):
    cert = get_policy(sync_server)
    data = clip_bytes(CLIP)
    d = cert["upload_dir"]
    refused(post_upload(sync_server, cert, "elsewhere/x.wav", data), 403, "AccessDenied")
    refused(post_upload(sync_server, cert, d + "x.wav", data), 403, "AccessDenied")  # prefix, not folder
    for bad in (f"{d}/../../../../secret.key", f"{d}/a//b.wav", f"{d}/./a.wav", f"{d}/"):
        resp = post_upload(sync_server, cert, bad, data)
        assert resp.status_code in (400, 403), (bad, resp.text)
    assert not list((sync_server.workdir / "data" / "uploads").glob("*.wav"))
    # the policy's own size cap
    small, sig = make_policy(Signer(SECRET.encode()), d, 1000, ttl_s=60)
    refused(post_upload(sync_server, cert, f"{d}/big.wav", data, policy=small, Signature=sig),
            413, "InvalidParameter.FileTooLarge")
    assert not (sync_server.workdir / "data" / "uploads" / d / "big.wav").exists()
    # missing parts
    resp = httpx.post(cert["upload_host"], data={"policy": cert["policy"], "Signature": cert["signature"],
                                                 "key": f"{d}/y.wav"}, timeout=10)
    refused(resp, 400, "InvalidParameter")


@pytest.mark.timeout(10)
def test_policy_request_needs_action(sync_server):
    resp = httpx.get(sync_server.http + "/api/v1/uploads", params={"model": MODEL},
                     headers={"Authorization": "Bearer k"}, timeout=10)
    refused(resp, 400, "InvalidParameter")

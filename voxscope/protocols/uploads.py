"""The SDK's local-file upload flow (REST §4): an upload policy, then a policy-signed POST.

`MultiModalConversation.call` with `file://…` or a plain path first asks
`GET /api/v1/uploads?action=getPolicy&model=…` (API key checked) for an OSS-style POST policy,
then POSTs the file as multipart/form-data to `upload_host` *without* an API key, and sends
`oss://<key>` in the generation request. Here `upload_host` is this server's own
`/api/v1/uploads/oss`: the policy is a base64 JSON document (upload_dir, expiry, size cap) signed
with the server's secret, and the POST is accepted only with a valid, unexpired policy, a key
inside the policy's `upload_dir` and a file within both the policy's and the server's size cap.
Files land in `data_dir/uploads/<key>`; `oss://<key>` resolves there (voxscope.inputs).

Uploads belong to the key that asked for the policy, as tasks and vocabularies do: `upload_dir`
holds a tag derived (with the server's secret) from the owner, and a request may use an
`oss://` key only when its tag is its own caller's (`check_upload_owner`); the random rest of the
folder keeps keys unguessable.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from voxscope.inputs import InputError, upload_path
from voxscope.inputs.errors import FILE_TOO_LARGE
from voxscope.inputs.fetch import size_text
from voxscope.protocols import errors
from voxscope.protocols.app_runtime import runtime_of
from voxscope.protocols.errors import ProtocolError
from voxscope.protocols.hosts import link_base
from voxscope.protocols.json_body import BodyTooLarge, capped_request
from voxscope.protocols.rest import caller, ok
from voxscope.service.runtime import Runtime
from voxscope.storage.signing import Signer

log = logging.getLogger(__name__)

router = APIRouter()

UPLOAD_PATH = "/api/v1/uploads/oss"
POLICY_TTL_S = 300  # what DashScope hands out (expire_in_seconds)
ACCESS_KEY_ID = "voxscope"  # the SDK sends it back as OSSAccessKeyId; nothing secret
ACCESS_DENIED = "AccessDenied"
FILE_EXISTS = "FileAlreadyExists"
_FORM_SLACK = 64 << 10  # room for the form's text fields around the file
_POLICY_CONTEXT = "voxscope-upload-policy\n"
_OWNER_CONTEXT = "voxscope-upload-owner\n"
UPLOAD_ROOT = "dashscope-instant"


async def read_form(request: Request, max_bytes: int, *, max_fields: int = 32) -> FormData:
    """Parse a multipart body of at most max_bytes (BodyTooLarge beyond); at most one file."""
    return await capped_request(request, max_bytes).form(max_files=1, max_fields=max_fields)


# -- policy ------------------------------------------------------------------------------------
def make_policy(signer: Signer, upload_dir: str, max_bytes: int, ttl_s: float) -> tuple[str, str]:
    doc = {"upload_dir": upload_dir, "expires": int(time.time() + ttl_s), "max_bytes": max_bytes}
    policy = base64.b64encode(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).decode()
    return policy, signer.signature(_POLICY_CONTEXT + policy)


def check_policy(signer: Signer, policy: str | None, signature: str | None) -> dict[str, Any]:
    """The policy document if its signature is ours and it has not expired; else ProtocolError."""
    if not policy or not signature:
        raise ProtocolError(ACCESS_DENIED, "the upload needs the 'policy' and 'Signature' fields "
                                           "from GET /api/v1/uploads?action=getPolicy", 403)
    if not hmac.compare_digest(signer.signature(_POLICY_CONTEXT + policy), signature):
        raise ProtocolError(ACCESS_DENIED, "the upload policy's signature does not match", 403)
    try:
        doc = json.loads(base64.b64decode(policy, validate=True))
        expires, upload_dir, max_bytes = int(doc["expires"]), str(doc["upload_dir"]), int(doc["max_bytes"])
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise ProtocolError(ACCESS_DENIED, "the upload policy is malformed", 403) from None
    if expires < time.time():
        raise ProtocolError(ACCESS_DENIED, "the upload policy has expired; ask for a new one", 403)
    return {"expires": expires, "upload_dir": upload_dir, "max_bytes": max_bytes}


def owner_tag(signer: Signer, owner: str) -> str:
    """The folder name an owner's uploads go under: stable, and says nothing about the key."""
    return signer.signature(_OWNER_CONTEXT + owner)[:32]


def check_upload_owner(rt: Runtime, ref: str, owner: str) -> None:
    """Refuse an `oss://` reference to a file uploaded under another API key (other refs pass).

    A malformed key or one naming no stored file passes here: the input layer then answers
    `FileUrl` / `FileNotFound` as for any caller. Upload folders hold a random uuid, so the
    existence of someone else's file cannot be probed by guessing."""
    if not isinstance(ref, str) or ref.strip()[:6].lower() != "oss://":
        return
    key = ref.strip()[6:]
    parts = key.split("/")
    if len(parts) >= 3 and parts[0] == UPLOAD_ROOT and hmac.compare_digest(
            parts[1], owner_tag(rt.signer, owner)):
        return
    try:
        if not upload_path(rt.settings, key).is_file():
            return
    except InputError:
        return
    raise ProtocolError(ACCESS_DENIED, "the oss:// file was not uploaded with this API key; "
                                       "upload it with the key that uses it", 403)


def upload_host(request: Request) -> str:
    return link_base(request) + UPLOAD_PATH


@router.get("/api/v1/uploads")
@router.get("/api/v1/uploads/")
async def get_policy(request: Request) -> Response:
    owner = caller(request)
    rt = runtime_of(request)
    action = request.query_params.get("action")
    if action != "getPolicy":
        raise ProtocolError(errors.INVALID_PARAMETER, f"unsupported action {action!r}; only getPolicy")
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    # The owner's tag binds the upload to this key; the random uuid makes it unguessable.
    upload_dir = f"{UPLOAD_ROOT}/{owner_tag(rt.signer, owner)}/{day}/{uuid.uuid4()}"
    max_bytes = rt.settings.max_upload_bytes
    policy, signature = make_policy(rt.signer, upload_dir, max_bytes, POLICY_TTL_S)
    return ok({"data": {
        "policy": policy,
        "signature": signature,
        "upload_dir": upload_dir,
        "upload_host": upload_host(request),
        "expire_in_seconds": POLICY_TTL_S,
        "max_file_size_mb": max_bytes >> 20,
        "capacity_limit_mb": max_bytes >> 20,
        "oss_access_key_id": ACCESS_KEY_ID,
        "x_oss_object_acl": "private",
        "x_oss_forbid_overwrite": "true",
    }})


def _store(src: BinaryIO, dest: Path, max_bytes: int, overwrite: bool) -> int:
    """Copy an uploaded file to dest (atomically: complete or absent); returns its size."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    try:
        size = 0
        with open(tmp, "xb") as out:
            while chunk := src.read(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise InputError(FILE_TOO_LARGE, f"the file is larger than the "
                                                     f"{size_text(max_bytes)} upload limit")
                out.write(chunk)
        if overwrite:
            os.replace(tmp, dest)
        else:
            try:
                os.link(tmp, dest)  # fails if dest exists: no overwrite, no race
            except FileExistsError:
                raise ProtocolError(FILE_EXISTS, "an object with this key already exists", 409) from None
        return size
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


@router.post(UPLOAD_PATH)
async def upload(request: Request) -> Response:
    rt = runtime_of(request)
    cap = rt.settings.max_upload_bytes
    try:
        form = await read_form(request, cap + _FORM_SLACK)
    except BodyTooLarge:
        raise ProtocolError(FILE_TOO_LARGE, f"the file is larger than the {size_text(cap)} upload limit",
                            413) from None
    try:
        policy = check_policy(rt.signer, _text(form, "policy"), _text(form, "Signature"))
        key = _text(form, "key")
        file = form.get("file")
        if not key or not isinstance(file, UploadFile):
            raise ProtocolError(errors.INVALID_PARAMETER, "the upload needs a 'key' field and a 'file' part")
        if not key.startswith(policy["upload_dir"] + "/"):
            raise ProtocolError(ACCESS_DENIED, "the key is outside the policy's upload_dir", 403)
        dest = upload_path(rt.settings, key)
        overwrite = (_text(form, "x-oss-forbid-overwrite") or "false").lower() != "true"
        limit = min(cap, policy["max_bytes"])
        try:
            size = await run_in_threadpool(_store, file.file, dest, limit, overwrite)
        except InputError as exc:
            raise ProtocolError(exc.code, exc.message, 413) from None
        log.info("stored upload %s (%d bytes)", key, size)
    finally:
        await form.close()
    # OSS answers success_action_status=200 with an empty body; the SDK only checks the status.
    return Response(status_code=200)


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None

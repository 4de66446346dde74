"""Audio references a request may carry, each turned into a local file (or refused).

| reference | what happens |
| --- | --- |
| `http(s)://…` | downloaded into `workdir` (see fetch.py: public addresses only, size and time caps) |
| `data:<mime>[;base64],<data>` | decoded into `workdir`; the decoded size counts against `max_bytes` |
| `oss://<key>` | a file stored earlier by the upload flow, `settings.data_dir/uploads/<key>` |
| `file://<abs path>` | a server-side file, only inside one of `settings.file_roots` (after symlinks) |
| anything else | `InputError(InvalidParameter.FileUrl)` |

`oss://` and `file://` return the stored file itself (callers must not delete it); the others
return a new file inside `workdir` (the caller owns and removes `workdir`).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from voxscope.config import Settings
from voxscope.inputs.errors import (
    FILE_NOT_FOUND,
    FILE_TOO_LARGE,
    FILE_URL,
    PRIVATE_ADDRESS,
    InputError,
)
from voxscope.inputs.fetch import check_url, fetch, is_public, size_text

MAX_KEY_LEN = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
_MIME_SUFFIX = {
    "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/vnd.wave": ".wav",
    "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/mp4": ".m4a", "audio/x-m4a": ".m4a",
    "audio/aac": ".aac", "audio/ogg": ".ogg", "audio/opus": ".opus", "audio/flac": ".flac",
    "audio/x-flac": ".flac", "audio/amr": ".amr", "audio/webm": ".webm", "video/mp4": ".mp4",
    "video/webm": ".webm",
}


def safe_key(key: str) -> str:
    """Validate an upload object key (`dir/sub/name.wav`); returns it unchanged or raises.

    Relative, '/'-separated, no empty, '.' or '..' segments, no backslashes or control characters.
    """
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LEN or _CONTROL.search(key):
        raise InputError(FILE_URL, "the object key is empty, too long or has control characters")
    parts = key.split("/")
    if any(p in ("", ".", "..") or len(p.encode()) > 255 for p in parts):
        raise InputError(FILE_URL, f"the object key {key!r} is not a plain relative path")
    return key


def uploads_root(settings: Settings) -> Path:
    return (settings.data_dir / "uploads").resolve()


def expire_uploads(settings: Settings) -> int:
    """Delete uploaded objects older than `upload_ttl_s` (like the service's temporary uploads);
    returns how many went."""
    root = uploads_root(settings)
    cutoff = time.time() - settings.upload_ttl_s
    removed = 0
    for path in sorted(root.rglob("*"), reverse=True):  # files before their folders
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        except OSError:
            continue
    return removed


def upload_path(settings: Settings, key: str) -> Path:
    """Where the object `key` is (or will be) stored; never outside the uploads folder."""
    root = uploads_root(settings)
    path = root.joinpath(*safe_key(key).split("/"))
    # A symlink placed inside the uploads folder must not lead out of it.
    if not _inside(os.path.realpath(path), str(root)):
        raise InputError(FILE_URL, f"the object key {key!r} is not a plain relative path")
    return path


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


def _check_size(path: Path, max_bytes: int) -> Path:
    try:
        size = path.stat().st_size
    except OSError:
        raise InputError(FILE_NOT_FOUND, "the file was not found") from None
    if size > max_bytes:
        raise InputError(FILE_TOO_LARGE, f"the file is larger than the {size_text(max_bytes)} limit")
    return path


def _data_uri(ref: str, workdir: Path, max_bytes: int) -> Path:
    header, sep, data = ref[5:].partition(",")
    if not sep:
        raise InputError(FILE_URL, "the data URI has no ',' before its data")
    params = [p.strip().lower() for p in header.split(";")]
    mime = params[0] if params and "/" in params[0] else ""
    too_large = f"the audio is larger than the {size_text(max_bytes)} limit"
    if "base64" in params[1:]:
        data = re.sub(r"\s+", "", unquote(data) if "%" in data else data)
        if len(data) // 4 * 3 - 3 > max_bytes:  # refuse before decoding
            raise InputError(FILE_TOO_LARGE, too_large)
        data += "=" * (-len(data) % 4)
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            try:  # the URL-safe alphabet, strictly
                raw = base64.b64decode(data, altchars=b"-_", validate=True)
            except (binascii.Error, ValueError):
                raise InputError(FILE_URL, "the data URI's base64 data is not valid") from None
    else:
        if len(data) > 3 * max_bytes:
            raise InputError(FILE_TOO_LARGE, too_large)
        raw = unquote_to_bytes(data)
    if len(raw) > max_bytes:
        raise InputError(FILE_TOO_LARGE, too_large)
    if not raw:
        raise InputError(FILE_URL, "the data URI holds no data")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"data-{uuid.uuid4().hex}{_MIME_SUFFIX.get(mime, '')}"
    path.write_bytes(raw)
    return path


def _uploaded(ref: str, settings: Settings, max_bytes: int) -> Path:
    key = ref[len("oss://"):]
    path = upload_path(settings, key)
    if not path.is_file():
        raise InputError(FILE_NOT_FOUND,
                         f"no uploaded file {ref!r} (upload it first through the upload policy)")
    return _check_size(path, max_bytes)


def _local(ref: str, settings: Settings, max_bytes: int) -> Path:
    raw, real = _local_place(ref, settings)
    path = Path(real)
    if not path.is_file():
        raise InputError(FILE_NOT_FOUND, f"no such file: {raw}")
    return _check_size(path, max_bytes)


def _local_place(ref: str, settings: Settings) -> tuple[str, str]:
    """(path as given, real path) of a file:// URL, refused unless inside file_roots."""
    parts = urlsplit(ref)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise InputError(FILE_URL, "a file:// URL must name an absolute local path (file:///path)")
    raw = unquote(parts.path)
    if not raw.startswith("/") or "\x00" in raw:
        raise InputError(FILE_URL, "a file:// URL must name an absolute local path (file:///path)")
    roots = [os.path.realpath(r) for r in settings.file_roots]
    if not roots:
        raise InputError(FILE_URL, "file:// input is disabled on this server (no file_roots configured)")
    real = os.path.realpath(raw)
    # Decide on the place before looking at the file, so refusals say nothing about what exists.
    if not any(_inside(real, root) for root in roots):
        raise InputError(FILE_URL, "file:// input may only read from the server's configured "
                                   "file_roots; this path is outside them")
    return raw, real


def precheck(ref: str, settings: Settings) -> None:
    """Refuse at once what `materialize` would certainly refuse later (scheme, file:// outside
    file_roots, a literal private address), so a task is not accepted only to fail. Hosts that
    need DNS are checked when fetched. No network, no file access."""
    head = ref[:8].lower() if isinstance(ref, str) else ""
    if head.startswith(("http://", "https://")):
        url = check_url(ref)
        if not settings.fetch_allow_private:
            host = url.host.lower()
            try:
                private = not is_public(ipaddress.ip_address(host))
            except ValueError:
                private = host == "localhost" or host.endswith(".localhost")
            if private:
                raise InputError(PRIVATE_ADDRESS, f"the file URL's host {url.host!r} is not a "
                                 "public address; only public internet addresses may be fetched")
    elif head.startswith("file://"):
        _local_place(ref, settings)
    elif head.startswith("oss://"):
        safe_key(ref[len("oss://"):])
    elif not head.startswith("data:"):
        materialize(ref, settings, Path("."), max_bytes=0)  # raises the unsupported-scheme error


def materialize(ref: str, settings: Settings, workdir: Path, *, max_bytes: int) -> Path:
    """A local file holding the audio `ref` points at. Blocking; raises InputError."""
    if not isinstance(ref, str) or not ref.strip():
        raise InputError(FILE_URL, "no audio file URL was given")
    ref = ref.strip()
    head = ref[:8].lower()
    if head.startswith(("http://", "https://")):
        return fetch(ref, settings, workdir, max_bytes=max_bytes)
    if head.startswith("data:"):
        return _data_uri(ref, workdir, max_bytes)
    if head.startswith("oss://"):
        return _uploaded(ref, settings, max_bytes)
    if head.startswith("file://"):
        return _local(ref, settings, max_bytes)
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", ref)
    what = f"URL scheme {m.group(1).lower()!r}" if m else "reference (not a URL)"
    raise InputError(FILE_URL, f"unsupported audio {what}: use an http(s):// URL, a data: URI, "
                               f"an oss:// key from the upload flow, or file:// inside file_roots")

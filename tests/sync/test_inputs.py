"""voxscope.inputs in-process: every kind of audio reference, and every way one is refused.

No server process: `materialize` is called directly with Settings pointing at a temp data dir.
Downloads go to a real HTTP server on 127.0.0.1 (`AudioHost`), so they need
`fetch_allow_private`; the address checks themselves are tested with that off, and the redirect
re-check with `is_public` patched to let exactly 127.0.0.1 through.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import time
from pathlib import Path

import pytest

from tests.sync.helpers import clip_bytes
from voxscope.config import Settings
from voxscope.inputs import InputError, materialize, safe_key, upload_path
from voxscope.inputs import fetch as fetch_mod
from voxscope.inputs.errors import (
    DOWNLOAD_FAILED,
    FILE_NOT_FOUND,
    FILE_TOO_LARGE,
    FILE_URL,
    PRIVATE_ADDRESS,
)

CLIP = "en_ldc93s1"
MB = 1 << 20


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", fetch_allow_private=True, fetch_timeout_s=10)


def refused(ref: str, settings: Settings, workdir: Path, code: str, max_bytes: int = 10 * MB) -> InputError:
    with pytest.raises(InputError) as info:
        materialize(ref, settings, workdir, max_bytes=max_bytes)
    assert info.value.code == code, (info.value.code, info.value.message)
    assert info.value.message and info.value.http_status == 400
    return info.value


# -- http(s) -----------------------------------------------------------------------------------
def test_download(sync_host, settings, tmp_path):
    url = sync_host.put_clip(CLIP)
    path = materialize(url, settings, tmp_path / "w", max_bytes=10 * MB)
    assert path.parent == tmp_path / "w" and path.read_bytes() == clip_bytes(CLIP)
    # through a redirect (relative Location) as well
    path = materialize(f"{sync_host.base}/redirect?to=/{url.rsplit('/', 1)[1]}", settings,
                       tmp_path / "w", max_bytes=10 * MB)
    assert path.read_bytes() == clip_bytes(CLIP)


def test_download_failures(sync_host, settings, tmp_path):
    w = tmp_path / "w"
    refused(f"{sync_host.base}/missing.wav", settings, w, FILE_NOT_FOUND)
    refused(f"{sync_host.base}/error", settings, w, DOWNLOAD_FAILED)
    e = refused(f"{sync_host.base}/loop", settings, w, DOWNLOAD_FAILED)
    assert "redirect" in e.message
    refused(f"{sync_host.base}/redirect?to=ftp://example.com/a.wav", settings, w, FILE_URL)
    refused(f"{sync_host.base}/redirect?to=file:///etc/passwd", settings, w, FILE_URL)
    refused("http://127.0.0.1:1/nothing-listens-here.wav", settings, w, DOWNLOAD_FAILED)
    assert not w.exists() or not list(w.iterdir())  # no partial files left behind


def test_download_size_cap(sync_host, settings, tmp_path):
    url = sync_host.put_clip(CLIP)
    refused(url, settings, tmp_path, FILE_TOO_LARGE, max_bytes=1000)  # Content-Length says so
    start = time.monotonic()
    refused(f"{sync_host.base}/endless", settings, tmp_path, FILE_TOO_LARGE, max_bytes=MB)
    assert time.monotonic() - start < 5
    assert not list(tmp_path.glob("download-*"))


def test_download_time_cap(sync_host, tmp_path):
    settings = Settings(data_dir=tmp_path, fetch_allow_private=True, fetch_timeout_s=1.0)
    start = time.monotonic()
    e = refused(f"{sync_host.base}/slow", settings, tmp_path, DOWNLOAD_FAILED)
    assert time.monotonic() - start < 4 and "1 s" in e.message, e.message


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/a.wav", "http://localhost/a.wav", "http://[::1]/a.wav",
    "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/a.wav", "http://192.168.1.1/a.wav",
    "http://[::ffff:127.0.0.1]/a.wav", "http://0.0.0.0/a.wav", "http://[fd00::1]/a.wav",
    "https://100.64.0.1/a.wav",
])
def test_private_addresses_refused(url, tmp_path):
    settings = Settings(data_dir=tmp_path, fetch_allow_private=False)
    refused(url, settings, tmp_path, PRIVATE_ADDRESS)


def test_redirect_target_checked_again(sync_host, tmp_path, monkeypatch):
    # 127.0.0.1 counts as public here; the redirect to 127.0.0.2 (loopback) must still be refused.
    monkeypatch.setattr(fetch_mod, "is_public",
                        lambda ip: ip == ipaddress.ip_address("127.0.0.1"))
    settings = Settings(data_dir=tmp_path, fetch_allow_private=False)
    url = sync_host.put_clip(CLIP)
    path = materialize(url, settings, tmp_path, max_bytes=10 * MB)  # pinned-address download
    assert path.read_bytes() == clip_bytes(CLIP)
    port = url.split(":")[2].split("/")[0]
    refused(f"{sync_host.base}/redirect?to=http://127.0.0.2:{port}/x.wav", settings, tmp_path,
            PRIVATE_ADDRESS)


def test_is_public():
    for addr in ("8.8.8.8", "2606:4700::1111", "93.184.216.34"):
        assert fetch_mod.is_public(ipaddress.ip_address(addr)), addr
    for addr in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254",
                 "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::",
                 "fe80::1", "fd12::1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "ff02::1"):
        assert not fetch_mod.is_public(ipaddress.ip_address(addr)), addr


# -- data: -------------------------------------------------------------------------------------
def test_data_uris(settings, tmp_path):
    data = clip_bytes(CLIP)
    b64 = base64.b64encode(data).decode()
    path = materialize(f"data:audio/wav;base64,{b64}", settings, tmp_path, max_bytes=MB)
    assert path.read_bytes() == data and path.suffix == ".wav" and path.parent == tmp_path
    urlsafe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert materialize(f"data:audio/wav;base64,{urlsafe}", settings, tmp_path,
                       max_bytes=MB).read_bytes() == data
    assert materialize("data:application/octet-stream,%00%01abc", settings, tmp_path,
                       max_bytes=MB).read_bytes() == b"\x00\x01abc"
    refused("data:audio/wav;base64,@@@@", settings, tmp_path, FILE_URL)
    refused("data:audio/wav;base64", settings, tmp_path, FILE_URL)
    refused("data:audio/wav;base64,", settings, tmp_path, FILE_URL)
    refused(f"data:audio/wav;base64,{b64}", settings, tmp_path, FILE_TOO_LARGE, max_bytes=len(data) - 1)


# -- oss:// ------------------------------------------------------------------------------------
def test_uploaded_keys(settings, tmp_path):
    key = "dashscope-instant/abc/2025-01-01/x y/clip.wav"
    stored = upload_path(settings, key)
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"RIFF....")
    assert materialize(f"oss://{key}", settings, tmp_path, max_bytes=MB) == stored
    refused(f"oss://{key}", settings, tmp_path, FILE_TOO_LARGE, max_bytes=3)
    refused("oss://dashscope-instant/abc/none.wav", settings, tmp_path, FILE_NOT_FOUND)
    for bad in ("", "/abs/x.wav", "a/../../x", "..", "a//b", "a/./b", "a\\..\\b", "a/\x00b", "x" * 2000):
        with pytest.raises(InputError) as info:
            safe_key(bad)
        assert info.value.code == FILE_URL
        refused(f"oss://{bad}", settings, tmp_path, FILE_URL)
    # a symlink planted in the uploads folder does not lead out of it
    os.symlink("/etc", upload_path(settings, "dashscope-instant/abc/link"))
    refused("oss://dashscope-instant/abc/link/passwd", settings, tmp_path, FILE_URL)


# -- file:// -----------------------------------------------------------------------------------
def test_local_files(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.wav").write_bytes(b"abc")
    os.symlink("/etc/passwd", root / "escape.wav")
    closed = Settings(data_dir=tmp_path / "d")
    e = refused(f"file://{root}/a.wav", closed, tmp_path, FILE_URL)
    assert "file_roots" in e.message
    settings = Settings(data_dir=tmp_path / "d", file_roots=[str(root)])
    assert materialize(f"file://{root}/a.wav", settings, tmp_path, max_bytes=MB) == root / "a.wav"
    assert materialize(f"file://localhost{root}/a.wav", settings, tmp_path, max_bytes=MB) == root / "a.wav"
    refused(f"file://{root}/a.wav", settings, tmp_path, FILE_TOO_LARGE, max_bytes=2)
    refused("file:///etc/passwd", settings, tmp_path, FILE_URL)
    refused(f"file://{root}/../../../etc/passwd", settings, tmp_path, FILE_URL)
    refused(f"file://{root}/escape.wav", settings, tmp_path, FILE_URL)
    refused(f"file://{root}/missing.wav", settings, tmp_path, FILE_NOT_FOUND)
    refused(f"file://{root}", settings, tmp_path, FILE_NOT_FOUND)  # a folder is not a file
    refused(f"file://otherhost{root}/a.wav", settings, tmp_path, FILE_URL)
    refused("file://relative/a.wav", settings, tmp_path, FILE_URL)


@pytest.mark.parametrize("ref", ["ftp://example.com/a.wav", "gopher://x", "/etc/passwd", "clip.wav",
                                 "", "   ", "javascript:alert(1)", "s3://bucket/a.wav"])
def test_other_references_refused(ref, settings, tmp_path):
    refused(ref, settings, tmp_path, FILE_URL)

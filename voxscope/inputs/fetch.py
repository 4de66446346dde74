"""Downloading an http(s) audio URL that a client handed us, without letting it reach inside.

A URL from a request is untrusted: it may point at the server itself, the local network or a cloud
metadata service (SSRF), be endless, or be slow. So:

- only `http` and `https`;
- the host is resolved once and every address it resolves to must be public (not loopback,
  private, link-local, shared, reserved, multicast, unspecified; IPv4 embedded in IPv6 is checked
  as IPv4), unless `settings.fetch_allow_private`. The connection then goes to that checked
  address (the Host header and TLS server name stay the URL's), so a second DNS answer cannot
  swap in a private address (DNS rebinding);
- redirects are followed by hand, at most MAX_REDIRECTS, each target checked like the first URL;
- the body is streamed to disk and cut off at `max_bytes` (after content decoding, so a
  compressed bomb is capped too); a Content-Length above the cap is refused before reading;
- everything (all redirects and the body) must finish within `settings.fetch_timeout_s`: the
  deadline is checked whenever data arrives, and no single wait may outlast what was left of it
  when the request started (so a stalled server is dropped within twice the limit at worst).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urljoin

import httpx

from voxscope.config import Settings
from voxscope.inputs.errors import (
    DOWNLOAD_FAILED,
    FILE_NOT_FOUND,
    FILE_TOO_LARGE,
    FILE_URL,
    PRIVATE_ADDRESS,
    InputError,
)

MAX_REDIRECTS = 5
SCHEMES = ("http", "https")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REDIRECTS = (301, 302, 303, 307, 308)
_USER_AGENT = "voxscope-fetch/1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(ip: IPAddress) -> bool:
    """True for an address on the public internet (what an untrusted URL may reach)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified
                                 or ip.is_loopback or ip.is_link_local or ip.is_private)


def size_text(n: int) -> str:
    """A size limit in words: '10 MB', '1.5 MB', '1000 bytes'."""
    if n < 1 << 20:
        return f"{n} bytes"
    return f"{n >> 20} MB" if n % (1 << 20) == 0 else f"{n / (1 << 20):.1f} MB"


def check_url(url: str) -> httpx.URL:
    """Parse a URL and check its scheme and host (no network)."""
    if not isinstance(url, str) or not url or len(url) > 8192 or re.search(r"[\x00-\x20\x7f]", url):
        raise InputError(FILE_URL, "the file URL is empty, too long or contains spaces/control characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise InputError(FILE_URL, f"the file URL is not valid: {exc}") from None
    if parsed.scheme not in SCHEMES:
        raise InputError(FILE_URL, f"unsupported URL scheme {parsed.scheme!r}: only http and https")
    if not parsed.host:
        raise InputError(FILE_URL, "the file URL has no host")
    return parsed


def _resolve(host: str, port: int, deadline: float) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    if time.monotonic() > deadline:
        raise InputError(DOWNLOAD_FAILED, "downloading the file timed out")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(DOWNLOAD_FAILED, f"cannot resolve the file URL's host {host!r}: {exc}") from None
    addrs: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addrs:
            addrs.append(ip)
    if not addrs:
        raise InputError(DOWNLOAD_FAILED, f"the file URL's host {host!r} has no address")
    return addrs


def _target(url: httpx.URL, allow_private: bool,
            deadline: float) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """(URL to connect to, extra headers, request extensions) for one hop."""
    if allow_private:
        return url, {}, {}
    port = url.port or (443 if url.scheme == "https" else 80)
    addrs = _resolve(url.host, port, deadline)
    bad = [ip for ip in addrs if not is_public(ip)]
    if bad:
        raise InputError(PRIVATE_ADDRESS,
                         f"the file URL's host {url.host!r} resolves to a non-public address "
                         f"({bad[0]}); only public internet addresses may be fetched")
    ip = addrs[0]
    pinned = url.copy_with(host=str(ip))
    host_header = url.netloc.decode("ascii").rsplit("@", 1)[-1]
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


def _suffix(url: httpx.URL) -> str:
    name = url.path.rsplit("/", 1)[-1]
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def fetch(url: str, settings: Settings, workdir: Path, *, max_bytes: int) -> Path:
    """Download `url` into a new file in `workdir`; returns its path. Raises InputError."""
    deadline = time.monotonic() + settings.fetch_timeout_s
    current = check_url(url)
    timeout_msg = f"downloading the file took longer than {settings.fetch_timeout_s:g} s"
    with httpx.Client(follow_redirects=False, trust_env=False, verify=True,
                      headers={"User-Agent": _USER_AGENT}) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            target, headers, extensions = _target(current, settings.fetch_allow_private, deadline)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InputError(DOWNLOAD_FAILED, timeout_msg)
            request = client.build_request("GET", target, headers=headers, extensions=extensions,
                                           timeout=httpx.Timeout(remaining))
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException:
                raise InputError(DOWNLOAD_FAILED, timeout_msg) from None
            except httpx.HTTPError as exc:
                raise InputError(DOWNLOAD_FAILED, f"cannot download the file: {exc}") from None
            try:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    location = response.headers["location"]
                    current = check_url(urljoin(str(current), location))
                    continue
                return _save(response, current, workdir, max_bytes, deadline, timeout_msg)
            finally:
                response.close()
    raise InputError(DOWNLOAD_FAILED, f"the file URL redirected more than {MAX_REDIRECTS} times")


def _save(response: httpx.Response, url: httpx.URL, workdir: Path, max_bytes: int,
          deadline: float, timeout_msg: str) -> Path:
    status = response.status_code
    if status in (404, 410):
        raise InputError(FILE_NOT_FOUND, f"the file URL answered HTTP {status} (not found)")
    if status != 200:
        raise InputError(DOWNLOAD_FAILED, f"the file URL answered HTTP {status}")
    too_large = f"the file is larger than the {size_text(max_bytes)} limit"
    length = response.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise InputError(FILE_TOO_LARGE, too_large)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"download-{uuid.uuid4().hex}{_suffix(url)}"
    done = False
    try:
        with open(path, "wb") as out:
            size = 0
            try:
                # Chunks as they arrive (no batching), so the deadline is checked on every read.
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise InputError(FILE_TOO_LARGE, too_large)
                    if time.monotonic() > deadline:
                        raise InputError(DOWNLOAD_FAILED, timeout_msg)
                    out.write(chunk)
            except httpx.TimeoutException:
                raise InputError(DOWNLOAD_FAILED, timeout_msg) from None
            except httpx.HTTPError as exc:
                raise InputError(DOWNLOAD_FAILED, f"downloading the file failed: {exc}") from None
        done = True
        return path
    finally:
        if not done:
            with contextlib.suppress(OSError):
                path.unlink()

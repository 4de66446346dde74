"""Signed, expiring links: result documents and upload policies work without the API key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path


def load_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, else one generated once and kept in data_dir (so links survive a
    restart and every process sharing the folder agrees). Machines that share no folder must be
    given the same `secret_key`."""
    if configured:
        return configured.encode()
    path = data_dir / "secret.key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(value)
    return value


class Signer:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def signature(self, message: str) -> str:
        mac = hmac.new(self._secret, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def sign_path(self, path: str, ttl_s: float) -> dict[str, str]:
        expires = str(int(time.time() + ttl_s))
        return {"Expires": expires, "Signature": self.signature(f"{path}\n{expires}")}

    def check_path(self, path: str, expires: str | None, signature: str | None) -> str | None:
        """None when the link is valid, else why not."""
        if not expires or not signature:
            return "the link is not signed"
        try:
            if int(expires) < time.time():
                return "the link has expired"
        except ValueError:
            return "the link is malformed"
        if not hmac.compare_digest(self.signature(f"{path}\n{expires}"), signature):
            return "the link's signature does not match"
        return None

"""Keep the data folder private: transcripts, uploaded audio, databases and the link-signing
secret are readable by the server's own user only (folder 0700, files 0600)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077


def restrict_new_files() -> None:
    """Every file and folder this process creates from now on is private (0600 / 0700).

    A process-wide umask covers all writers at once (SQLite and its -wal/-shm/-journal files,
    the Huey queue, uploads, work files, results), which per-call modes could not."""
    os.umask(PRIVATE_UMASK)


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) as 0700; tighten an existing folder we own that
    others could read, so files written there earlier with looser modes are out of reach."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)
        log.warning("data folder %s was readable by other users (mode %o); now 0700",
                    path, stat.S_IMODE(st.st_mode))

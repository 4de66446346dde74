"""Turning untrusted audio references (URLs, data URIs, uploaded keys, local paths) into local files.

    from voxscope.inputs import InputError, materialize
    path = materialize(ref, settings, workdir, max_bytes=settings.max_sync_bytes)

Blocking (network and disk): call it from a worker thread, never on the event loop.
"""

from voxscope.inputs.errors import InputError
from voxscope.inputs.sources import materialize, precheck, safe_key, upload_path

__all__ = ["InputError", "materialize", "precheck", "safe_key", "upload_path"]

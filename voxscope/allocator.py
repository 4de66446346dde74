"""glibc malloc settings that keep a long-running server's memory flat, and a view of its state.

Why: voxscope allocates many large, short-lived buffers (audio, mel features, CTranslate2 and
ONNX activations) from several threads at once: the event loop, the inference worker, CTranslate2's
OpenMP threads, task workers, to_thread helpers. With glibc's defaults every such thread gets its
own arena (up to 8 per core, 15 seen), and freed memory stays behind, fragmented, in all of them:
RSS crept up under concurrent load (issue 9, item 15: ~30 MB/min) while the memory in use did
not. Bounding the arenas to 2 and trimming free pages out of the heaps now and then
(malloc_trim) keeps it flat (benchmarks/soak.py, benchmarks/RESULTS.md).

The mmap threshold is fixed low (256 KiB) instead of drifting up to 32 MiB with every large free:
mid-sized buffers (audio, features, CTranslate2 activations) are then mapped and unmapped whole
rather than carved out of the heaps, which is what kept RSS creeping even with 2 arenas and the
trim (floor of the soak: 6 MB/min at 32 MiB, 3.8-3.9 at 4 and 1 MiB, 0.7-1.2 at 256 KiB).
The price: those buffers are fresh zero-filled pages each time, ~20-25 % more CPU per decode in a
decode-only loop. Since the oneDNN cache is bounded (below), RSS stays flat at 1-32 MiB too, only
40-120 MB higher, and they save 11-18 % of the decode CPU (benchmarks/bench_allocator.py): a
CPU-bound deployment can set MALLOC_MMAP_THRESHOLD_ (e.g. 1048576).

Bulk decoding (`bulk_decoding`): an async file task's windows decoding on the main model with no
realtime work about spent ~35 % more CPU in the server than the same windows in-process with
glibc's defaults (`voxscope transcribe`): nearly all of it system time, page faults on the fresh
pages of CTranslate2's beam-search buffers (the decoder's cache grows every step, so each step maps
new multi-MB buffers). While such bulk work runs the mmap threshold is raised to
BULK_MMAP_THRESHOLD (those buffers are reused from the heap) and set back, with a trim, when
realtime work decodes again (benchmarks/RESULTS.md, "Why a file task cost more than transcribe").

`configure()` must run before the threads start (arenas are assigned on a thread's first malloc).
An explicit MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the environment
wins: the operator chose it. Outside glibc (musl, macOS) everything here is a no-op.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import threading

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENA_MAX = 2  # the main arena and one shared by every other thread
MMAP_THRESHOLD = 256 << 10  # buffers from 256 KiB are mmapped (8 s of audio is 512 KiB)
TRIM_THRESHOLD = 64 << 20  # heap tops above this go back at free(); the trim loop does the rest
# While bulk work decodes (bulk_decoding): 4 MiB saved ~20 % of a file task's CPU for ~+60 MB of
# peak RSS (1 MiB: ~11 % for ~+20 MB). VOXSCOPE_BULK_MMAP_THRESHOLD overrides it; 0 turns it off.
BULK_MMAP_THRESHOLD = 4 << 20
TRIM_PERIOD_S = 30.0  # malloc_trim also returns free pages inside heaps, not only at the top

_libc: ctypes.CDLL | None = None
_trimmer: threading.Thread | None = None
_lock = threading.Lock()
_threshold: int | None = None  # the mmap threshold configure() set (None: not ours to change)
_bulk_to = 0  # the bulk threshold bulk_decoding() may set (0: off), read once by configure()
_bulk = False  # whether the bulk threshold is in force


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL("libc.so.6")
            lib.mallopt.argtypes, lib.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            lib.malloc_trim.argtypes, lib.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError):  # not glibc
            return None
        _libc = lib
    return _libc

ONEDNN_PRIMITIVE_CACHE = 64  # oneDNN primitives kept (default 1024), see configure()


def configure(trim_period_s: float | None = TRIM_PERIOD_S) -> bool:
    """Apply the settings (once per process) and start the periodic trim; False outside glibc."""
    global _trimmer, _threshold, _bulk_to
    # oneDNN (CTranslate2's CPU conv / matmul kernels) keeps a JIT-compiled primitive per input
    # shape, up to 1024 by default; short-window decodes have a new encoder width almost every
    # time, so the cache grew ~0.6 MB of native heap per distinct width (~1 MB per realtime
    # session). A small cache bounds it; set the variable to override. Read when oneDNN first
    # runs, so this must happen before the first decode.
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_PRIMITIVE_CACHE))
    libc = _glibc()
    if libc is None:
        return False
    with _lock:
        if _trimmer is not None:
            return True
        for env, param, value in (("MALLOC_ARENA_MAX", M_ARENA_MAX, ARENA_MAX),
                                  ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                                  ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
            if env not in os.environ and libc.mallopt(param, value) != 1:
                log.warning("mallopt(%d, %d) failed", param, value)
        # The operator's MALLOC_MMAP_THRESHOLD_ wins: bulk decoding then leaves it alone.
        _threshold = None if "MALLOC_MMAP_THRESHOLD_" in os.environ else MMAP_THRESHOLD
        bulk = bulk_threshold()
        _bulk_to = bulk if _threshold is not None and bulk > _threshold else 0
        if trim_period_s:
            _trimmer = threading.Thread(target=_trim_loop, args=(trim_period_s,),
                                        name="malloc-trim", daemon=True)
            _trimmer.start()
        else:
            _trimmer = threading.current_thread()  # configured, no periodic trim
    return True


def bulk_threshold() -> int:
    """The mmap threshold for bulk decoding (0: the switch is off)."""
    try:
        return max(0, int(os.environ.get("VOXSCOPE_BULK_MMAP_THRESHOLD", BULK_MMAP_THRESHOLD)))
    except ValueError:
        return BULK_MMAP_THRESHOLD


def bulk_decoding(on: bool) -> bool:
    """Raise the mmap threshold while bulk work (file windows, no realtime work about) decodes;
    put it back and trim the heaps when it ends. Called by the thread that decodes on the main
    model before each batch; a no-op unless configure() set the threshold. Returns whether the
    bulk threshold is now in force."""
    global _bulk
    libc = _glibc()
    if libc is None or _threshold is None or not _bulk_to:
        return False
    with _lock:
        if on == _bulk:
            return _bulk
        libc.mallopt(M_MMAP_THRESHOLD, _bulk_to if on else _threshold)
        _bulk = on
        if not on:
            # The buffers the bulk decodes left in the heaps go back now, not at the next
            # periodic trim: realtime work keeps the flat-RSS settings.
            libc.malloc_trim(0)
    return on


def trim() -> bool:
    """Return the heaps' free pages to the system now (after a big free); False outside glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def _trim_loop(period: float) -> None:
    libc = _glibc()
    assert libc is not None
    while True:
        threading.Event().wait(period)
        libc.malloc_trim(0)


def arenas() -> int | None:
    """How many malloc arenas the process has (from malloc_info); None outside glibc."""
    libc = _glibc()
    if libc is None:
        return None
    buf, size = ctypes.c_char_p(), ctypes.c_size_t()
    libc.open_memstream.restype = ctypes.c_void_p
    libc.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.free.argtypes = [ctypes.c_void_p]
    fp = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
    if not fp:
        return None
    try:
        libc.malloc_info(0, fp)
    finally:
        libc.fclose(fp)
    try:
        xml = ctypes.string_at(buf, size.value).decode("ascii", "replace")
    finally:
        libc.free(ctypes.cast(buf, ctypes.c_void_p))
    return len(re.findall(r"<heap nr=", xml))

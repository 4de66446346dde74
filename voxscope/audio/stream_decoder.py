"""Incremental decoding of a realtime audio stream into float32 mono PCM.

A client declares ``format`` and ``sample_rate`` and then sends the audio as
binary frames of any size. :class:`StreamDecoder` turns those frames into
float32 mono samples at 16 kHz as they arrive:

* ``pcm`` and ``wav`` are decoded with numpy (pcm.py);
* ``mp3``, ``opus``/``speex`` (Ogg), ``aac`` (ADTS or MP4) and ``amr`` go through
  FFmpeg's demuxers and decoders on a per-stream thread (container.py).

The first bytes are checked against the declared format (sniff.py) before any
decoding, so a mismatch is reported as such rather than as a decoding failure.

Declared ``pcm`` whose bytes start with a RIFF/WAVE header is decoded as ``wav``:
clients often send a WAV file while declaring pcm, and playing its 44-byte header
as samples would only add a click, while the header's rate and channel count can
be checked against what was declared.

``feed()`` blocks until the data given has been decoded (normally well under a
millisecond per frame); call it from a worker thread, not an event loop.
"""

from __future__ import annotations

import numbers
import threading
import weakref
from typing import Protocol

import numpy as np

from .container import SPECS, BufferedContainerBackend, ThreadedContainerBackend
from .errors import AudioFormatError
from .pcm import TARGET_RATE, PcmBackend, WavBackend
from .resample import EMPTY, concat
from .sniff import Sniffed, check_declared, sniff

SUPPORTED_FORMATS: tuple[str, ...] = ("pcm", "wav", "mp3", "opus", "speex", "aac", "amr")
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
AMR_NB_RATE = 8000


class _Backend(Protocol):
    @property
    def input_rate(self) -> int | None: ...

    def feed(self, data: bytes) -> np.ndarray: ...

    def flush(self) -> np.ndarray: ...

    def close(self, wait: bool = True) -> None: ...


class StreamDecoder:
    """Decodes one client stream incrementally to float32 mono at ``target_rate``.

    ``feed()`` returns the samples that the data so far completes (possibly none);
    ``flush()`` ends the stream and returns the rest. Any :class:`AudioFormatError`
    (also one raised in the decode thread) comes out of the next ``feed()`` or
    ``flush()``, and the decoder stays failed afterwards. ``close()`` frees the
    decode thread and codec state; it is idempotent and may be called from any
    thread, at any time.
    """

    def __init__(
        self,
        fmt: str,
        sample_rate: int,
        target_rate: int = TARGET_RATE,
        max_buffer_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        name = fmt.strip().lower() if isinstance(fmt, str) else fmt
        if name not in SUPPORTED_FORMATS:
            raise AudioFormatError(
                f"unsupported audio format {fmt!r}; supported formats: "
                + ", ".join(SUPPORTED_FORMATS)
            )
        if (
            not isinstance(sample_rate, numbers.Integral)
            or isinstance(sample_rate, bool)
            or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE
        ):
            raise AudioFormatError(
                f"unsupported sample_rate {sample_rate!r}; it must be between "
                f"{MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz"
            )
        if name == "amr" and sample_rate != AMR_NB_RATE:
            raise AudioFormatError(
                f"format 'amr' must be AMR-NB, which is always {AMR_NB_RATE} Hz; "
                f"declared sample_rate is {sample_rate} Hz"
            )
        if not isinstance(target_rate, numbers.Integral) or target_rate <= 0:
            raise ValueError(f"invalid target_rate {target_rate!r}")
        self.format: str = name
        self.sample_rate: int = int(sample_rate)
        self.target_rate: int = int(target_rate)
        self.max_buffer_bytes: int = max_buffer_bytes

        self._lock = threading.Lock()  # one feed()/flush() at a time
        self._state_lock = threading.Lock()  # backend creation vs. close()
        self._head = bytearray()  # first bytes, held until the container is recognised
        self._backend: _Backend | None = None
        self._finalizer: weakref.finalize | None = None
        self._error: AudioFormatError | None = None
        self._closed = False
        self._flushed = False

    # --- public API -----------------------------------------------------------
    @property
    def input_rate(self) -> int | None:
        """The stream's actual sample rate once known (Opus: its 48 kHz decode rate)."""
        backend = self._backend
        return backend.input_rate if backend is not None else None

    def feed(self, data: bytes) -> np.ndarray:
        with self._lock:
            self._check_usable()
            try:
                if self._backend is None:
                    return self._start(bytes(data), final=False)
                return self._backend.feed(bytes(data))
            except AudioFormatError as e:
                self._fail(e)
                raise

    def flush(self) -> np.ndarray:
        with self._lock:
            if self._flushed and self._error is None and not self._closed:
                return EMPTY.copy()
            self._check_usable()
            self._flushed = True
            try:
                parts: list[np.ndarray] = []
                if self._backend is None:
                    if not self._head:
                        return EMPTY.copy()  # nothing was sent
                    parts.append(self._start(b"", final=True))
                if self._backend is not None:
                    parts.append(self._backend.flush())
                    self._backend.close()
                return concat([p for p in parts if p.size])
            except AudioFormatError as e:
                self._fail(e)
                raise

    def close(self) -> None:
        # Deliberately does not take self._lock: a feed() in another thread may be
        # waiting on the decode thread, and aborting the pipe is what releases it.
        with self._state_lock:
            self._closed = True
            backend = self._backend
            self._head = bytearray()
        if self._finalizer is not None:
            self._finalizer()  # aborts the pipe (runs at most once)
        if backend is not None:
            backend.close(wait=True)

    def __enter__(self) -> StreamDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals --------------------------------------------------------------
    def _check_usable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise AudioFormatError("the audio decoder is closed")
        if self._flushed:
            raise AudioFormatError("audio data received after the end of the stream")

    def _fail(self, error: AudioFormatError) -> None:
        self._error = error
        backend = self._backend
        if backend is not None:
            backend.close(wait=True)

    def _start(self, data: bytes, final: bool) -> np.ndarray:
        """Collect the first bytes until the container is recognised, then start decoding."""
        self._head += data
        if len(self._head) > self.max_buffer_bytes:
            raise AudioFormatError(
                f"too much undecoded audio buffered (over {self.max_buffer_bytes} bytes)"
            )
        found = sniff(self._head, final=final)
        if found is None:
            return EMPTY.copy()
        check_declared(self.format, found)
        backend = self._make_backend(found)
        with self._state_lock:
            if self._closed:
                backend.close(wait=True)
                return EMPTY.copy()
            self._backend = backend
            # A decoder dropped without close() (client vanished) still ends its
            # thread when garbage collected. The hook must not reference self.
            self._finalizer = weakref.finalize(self, backend.close, False)
        head, self._head = bytes(self._head), bytearray()
        return backend.feed(head)

    def _make_backend(self, found: Sniffed) -> _Backend:
        fmt, rate, target = self.format, self.sample_rate, self.target_rate
        cap = self.max_buffer_bytes
        if fmt == "wav" or (fmt == "pcm" and found.kind == "wav"):
            return WavBackend(rate, target, cap)
        if fmt == "pcm":
            return PcmBackend(rate, target)
        if fmt == "aac":
            if found.kind == "mp4":
                if found.streamable:
                    return ThreadedContainerBackend(SPECS["mp4"], rate, target, cap)
                return BufferedContainerBackend(SPECS["mp4"], rate, target, cap)
            return ThreadedContainerBackend(SPECS["adts"], rate, target, cap)
        return ThreadedContainerBackend(SPECS[fmt], rate, target, cap)

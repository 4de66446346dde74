"""Incremental decoding of container formats (Ogg, MP3, ADTS, AMR, MP4) with PyAV.

Design: FFmpeg's demuxers only know how to *pull* bytes, while a realtime client
*pushes* WebSocket frames. Each stream therefore gets one decode thread that runs
``av.open(pipe, format=<demuxer>)`` over a :class:`BlockingPipe` whose ``read()``
blocks until ``feed()`` supplies bytes or the stream ends. FFmpeg then handles any
frame boundary (mid-packet, mid-page, mid-header) itself, and every demuxer works
the same way. (Raw ``CodecContext.parse()`` would only cover MP3 and ADTS, and
still leave Ogg and AMR needing a demuxer.)

``feed()`` hands bytes to the pipe and waits until the thread has consumed them
and is blocked asking for more: everything decodable from the data so far has
come out, so output is deterministic and arrives with the call that completed it.

Ending the thread: ``close()`` aborts the pipe, which makes the blocked ``read()``
raise; FFmpeg returns that as an error, the thread closes its container and
exits. A ``StreamDecoder`` that is garbage collected without ``close()`` aborts
the pipe through a ``weakref.finalize`` hook (see stream_decoder.py).
"""

from __future__ import annotations

import collections
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass

import av
import av.error
import numpy as np

from .demux import tolerant_frames
from .errors import AudioFormatError
from .pcm import not_mono, rate_mismatch
from .resample import MonoResampler, concat
from .sniff import mp3_gapless_samples

# Keep av.open() from reading far ahead before returning: the format is given
# explicitly, so no format probing is needed, and stream parameters come from the
# first header/frame.
_OPEN_OPTIONS = {"probesize": "32", "analyzeduration": "0"}
# FFmpeg asks the pipe for at most this many bytes per read; reads return early
# with whatever has arrived, so this bounds work per call, not latency.
_IO_BUFFER_SIZE = 8192
# Once audio has come out, this many bytes without more audio means the stream has
# turned to garbage (the Ogg demuxer, for one, silently skips anything that is not
# a page). Larger than any legitimate gap: the biggest Ogg page is ~64 KiB.
_MAX_GAP_BYTES = 256 * 1024
# Consecutive packets that fail to decode before the stream is declared corrupt.
# Isolated bad packets (a damaged frame) are skipped.
_MAX_CONSECUTIVE_DECODE_ERRORS = 8
# How long feed() waits for the decode thread to catch up before returning what is
# ready (the rest comes out with later calls). Decoding is far faster than
# realtime, so this only matters for a huge single frame on a loaded machine.
FEED_WAIT_S = 10.0
# flush(): time allowed to decode the tail of the stream.
FLUSH_WAIT_S = 60.0
# close(): time allowed for the thread to notice the abort. It is a daemon thread
# and exits at its next read even if this expires.
CLOSE_WAIT_S = 5.0


@dataclass(frozen=True)
class ContainerSpec:
    fmt: str  # declared format, for messages
    demuxer: str  # FFmpeg demuxer name
    codec: str  # FFmpeg decoder name whose codec id the stream must have
    check_rate: bool  # compare the stream's rate with the declared one
    # AAC encoders prime the MDCT with one frame (1024 samples for AAC-LC) that the
    # decoder outputs first. MP4 signals it in its edit list; ADTS cannot, so the
    # first decoded frame is dropped to keep timing and length right.
    drop_first_frame: bool = False
    # FFmpeg drops the MP3 encoder's end padding (from the LAME tag) only for seekable
    # input; for a stream the length from that tag caps the output instead.
    mp3_gapless: bool = False


SPECS: dict[str, ContainerSpec] = {
    "mp3": ContainerSpec("mp3", "mp3", "mp3", True, mp3_gapless=True),
    # Opus always decodes at 48 kHz whatever rate it was encoded from (OpusHead's
    # input rate is informational only), so any declared rate is accepted.
    "opus": ContainerSpec("opus", "ogg", "opus", False),
    "speex": ContainerSpec("speex", "ogg", "speex", True),
    "adts": ContainerSpec("aac", "aac", "aac", True, drop_first_frame=True),
    "mp4": ContainerSpec("aac", "mp4", "aac", True),
    "amr": ContainerSpec("amr", "amr", "amrnb", True),
}


class _Aborted(Exception):
    """Raised inside the decode thread by the pipe once the decoder is closed."""


class BlockingPipe:
    """File-like object FFmpeg reads from; ``read()`` blocks until bytes arrive.

    It has no ``seek``/``tell``, so PyAV opens it as a non-seekable stream and the
    demuxers never try to jump ahead or look at the end of the file.
    """

    def __init__(self, max_pending: int, max_without_audio: int | None) -> None:
        self._cond = threading.Condition()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._pending = 0
        self._max_pending = max_pending
        self._max_without_audio = max_without_audio
        self._since_audio = 0  # bytes read since the decoder last produced audio
        self._audio_started = False
        self._eof = False
        self._aborted = False
        self._raised = False  # read() has already raised once
        self._reader_waiting = False
        self._reader_done = False

    # --- caller side -------------------------------------------------------
    def push(self, data: bytes) -> None:
        with self._cond:
            if self._aborted or self._eof or self._reader_done:
                # Nothing will read it: the decoder was closed, or the demuxer found
                # the end of its stream (trailing bytes are ignored, as FFmpeg does).
                return
            if self._pending + len(data) > self._max_pending:
                raise AudioFormatError(
                    f"too much undecoded audio buffered (over {self._max_pending} bytes)"
                )
            if data:
                self._chunks.append(bytes(data))
                self._pending += len(data)
                self._reader_waiting = False
                self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    @property
    def aborted(self) -> bool:
        return self._aborted

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the reader has taken every byte and wants more, or has exited."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._reader_done or (self._reader_waiting and not self._chunks),
                timeout,
            )

    # --- decode-thread side -------------------------------------------------
    def reader_done(self) -> None:
        with self._cond:
            self._reader_done = True
            self._chunks.clear()
            self._pending = 0
            self._cond.notify_all()

    def audio_produced(self) -> None:
        self._since_audio = 0
        if not self._audio_started and self._max_without_audio is not None:
            # Before the first audio, headers (e.g. cover art in tags) may be large.
            self._max_without_audio = min(self._max_without_audio, _MAX_GAP_BYTES)
        self._audio_started = True

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        with self._cond:
            while not (self._chunks or self._eof or self._aborted or self._raised):
                self._reader_waiting = True
                self._cond.notify_all()
                self._cond.wait()
            self._reader_waiting = False
            if self._raised:
                # FFmpeg may retry after a failed read; the exception is already on
                # its way (PyAV would only log a second one), so report end-of-file.
                return b""
            if self._aborted:
                self._raised = True
                raise _Aborted()
            if not self._chunks:
                return b""  # end of stream
            chunk = self._chunks.popleft()
            if 0 < size < len(chunk):
                self._chunks.appendleft(chunk[size:])
                chunk = chunk[:size]
            self._pending -= len(chunk)
            self._since_audio += len(chunk)
            if self._max_without_audio is not None and self._since_audio > self._max_without_audio:
                self._raised = True
                raise AudioFormatError(
                    f"no audio could be decoded from the last {self._since_audio} bytes; "
                    "the data is not a valid stream of the declared format"
                )
        return chunk


def _codec_id(name: str) -> int:
    return av.Codec(name, "r").id


class _Decoder:
    """The decode loop shared by the threaded (streaming) and buffered backends."""

    def __init__(
        self,
        spec: ContainerSpec,
        declared_rate: int,
        target_rate: int,
        emit: Callable[[np.ndarray], None],
        on_audio: Callable[[], None] = lambda: None,
    ) -> None:
        self.spec = spec
        self.declared_rate = declared_rate
        self.target_rate = target_rate
        self.emit = emit
        self.on_audio = on_audio
        self.input_rate: int | None = None
        # Exact length of the stream in input samples when its header says so
        # (MP3 LAME tag); set from the caller's thread before the decoder gets there.
        self.total_samples: int | None = None

    def run(self, source: object) -> None:
        spec = self.spec
        try:
            container = av.open(
                source,
                format=spec.demuxer,
                options=_OPEN_OPTIONS,
                buffer_size=_IO_BUFFER_SIZE,
                metadata_errors="ignore",
            )
        except av.error.FFmpegError as e:
            raise _corrupt(spec.fmt, e, "its headers") from None
        try:
            self._decode(container)
        except av.error.FFmpegError as e:
            raise _corrupt(spec.fmt, e, "a complete frame") from None
        finally:
            container.close()

    def _decode(self, container: av.container.InputContainer) -> None:
        spec = self.spec
        if not container.streams.audio:
            raise AudioFormatError(f"no audio stream found in the '{spec.fmt}' data")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        if ctx is None or ctx.codec.id != _codec_id(spec.codec):
            found = ctx.codec.name if ctx is not None else "an unknown codec"
            raise AudioFormatError(
                f"declared format '{spec.fmt}' but the stream contains {found} audio"
            )
        where = f"{spec.fmt} stream"
        if ctx.channels <= 0 or ctx.sample_rate <= 0:
            raise AudioFormatError(
                f"no valid frame found in the '{spec.fmt}' data: it is too short or corrupt"
            )
        if ctx.channels != 1:
            raise not_mono(ctx.channels, where)

        resampler = MonoResampler(self.target_rate)
        drop_first = spec.drop_first_frame
        rate = 0  # the stream's rate, from its first decoded frame
        emitted = 0
        # Output past the tagged MP3 length is held back: it is the encoder's end
        # padding, unless the stream goes on well past it (e.g. a wrong tag), in
        # which case it is released and the cap dropped.
        held: list[np.ndarray] = []

        def emit(out: np.ndarray) -> None:
            nonlocal emitted
            if self.total_samples is not None and out.size:
                room = max(0, round(self.total_samples * self.target_rate / rate) - emitted)
                if out.size > room:
                    held.append(out[room:])
                    out = out[:room]
                    if sum(h.size for h in held) > 2 * 1152 * self.target_rate / rate:
                        self.total_samples = None
                        out = concat([out, *held])
                        held.clear()
            if out.size:
                emitted += out.size
                self.emit(out)

        frames = tolerant_frames(
            container, stream, _MAX_CONSECUTIVE_DECODE_ERRORS,
            on_corrupt=lambda e, _: _corrupt(spec.fmt, e, "a complete frame"),
            on_nothing=lambda last: AudioFormatError(
                f"no audio could be decoded from the '{spec.fmt}' data ({last})"),
        )
        for frame in frames:
            # Checked per frame, not only from the stream header: HE-AAC's real
            # rate and parametric stereo only show once a frame is decoded.
            if frame.layout.nb_channels != 1:
                raise not_mono(frame.layout.nb_channels, where)
            if not rate:
                rate = frame.sample_rate
                if spec.check_rate and rate != self.declared_rate:
                    raise rate_mismatch(self.declared_rate, rate, where)
                self.input_rate = rate
            elif frame.sample_rate != rate:
                raise AudioFormatError(
                    f"the sample rate changed mid-stream from {rate} to {frame.sample_rate} Hz"
                )
            self.on_audio()
            if drop_first:
                drop_first = False
                continue
            emit(resampler.frame(frame))
        if rate:
            emit(resampler.flush())


def _corrupt(fmt: str, error: av.error.FFmpegError, what: str) -> AudioFormatError:
    if isinstance(error, EOFError):
        return AudioFormatError(f"the '{fmt}' data ended before {what} could be read")
    return AudioFormatError(
        f"the '{fmt}' data is corrupt or not {fmt} audio ({error.strerror or error})"
    )


class ThreadedContainerBackend:
    """Streams bytes through a decode thread (see the module docstring)."""

    def __init__(
        self, spec: ContainerSpec, declared_rate: int, target_rate: int, max_buffer_bytes: int
    ) -> None:
        self._pipe = BlockingPipe(max_buffer_bytes, max_without_audio=max_buffer_bytes)
        self._out: collections.deque[np.ndarray] = collections.deque()
        self._error: BaseException | None = None
        self._decoder = _Decoder(
            spec, declared_rate, target_rate, self._out.append, self._pipe.audio_produced
        )
        # MP3 only: leading bytes kept (in the caller's thread) until the LAME tag
        # has been looked for.
        self._mp3_head: bytearray | None = bytearray() if spec.mp3_gapless else None
        self._max_buffer = max_buffer_bytes
        self._thread = threading.Thread(
            target=self._run, name=f"voxscope-audio-{spec.fmt}", daemon=True
        )
        self._thread.start()

    @property
    def input_rate(self) -> int | None:
        return self._decoder.input_rate

    def _run(self) -> None:
        try:
            self._decoder.run(self._pipe)
        except _Aborted:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            if not self._pipe.aborted:
                self._error = e
        finally:
            self._pipe.reader_done()

    def _raise_if_failed(self) -> None:
        err = self._error
        if err is None:
            return
        if isinstance(err, AudioFormatError):
            raise err
        if isinstance(err, av.error.FFmpegError):
            raise AudioFormatError(f"could not decode the audio: {err.strerror or err}") from err
        raise err

    def _drain(self) -> np.ndarray:
        parts = []
        while self._out:
            parts.append(self._out.popleft())
        return concat(parts)

    def _look_for_lame_tag(self, data: bytes) -> None:
        assert self._mp3_head is not None
        self._mp3_head += data
        decided, samples = mp3_gapless_samples(self._mp3_head)
        if decided or len(self._mp3_head) > self._max_buffer:
            self._mp3_head = None
            self._decoder.total_samples = samples

    def feed(self, data: bytes) -> np.ndarray:
        self._raise_if_failed()
        if self._mp3_head is not None:
            self._look_for_lame_tag(data)
        self._pipe.push(data)
        self._pipe.wait_idle(FEED_WAIT_S)
        self._raise_if_failed()
        return self._drain()

    def flush(self) -> np.ndarray:
        self._raise_if_failed()
        self._pipe.finish()
        self._thread.join(FLUSH_WAIT_S)
        if self._thread.is_alive():
            self.close(wait=False)
            raise AudioFormatError("decoding the end of the stream took too long")
        self._raise_if_failed()
        return self._drain()

    def close(self, wait: bool = True) -> None:
        self._pipe.abort()
        if wait and self._thread is not threading.current_thread():
            self._thread.join(CLOSE_WAIT_S)
        self._out.clear()


class BufferedContainerBackend:
    """Holds the whole stream and decodes it at flush().

    Used for MP4/M4A whose ``moov`` index is not at the front: the demuxer must
    seek back to the samples after reading the index at the end of the file, so
    nothing can be decoded before the last byte arrives.
    """

    def __init__(
        self, spec: ContainerSpec, declared_rate: int, target_rate: int, max_buffer_bytes: int
    ) -> None:
        self._buf = bytearray()
        self._max = max_buffer_bytes
        self._out: list[np.ndarray] = []
        self._decoder = _Decoder(spec, declared_rate, target_rate, self._out.append)

    @property
    def input_rate(self) -> int | None:
        return self._decoder.input_rate

    def feed(self, data: bytes) -> np.ndarray:
        if len(self._buf) + len(data) > self._max:
            raise AudioFormatError(
                f"too much undecoded audio buffered (over {self._max} bytes); an MP4/M4A "
                "stream can only be decoded incrementally when its moov atom comes first"
            )
        self._buf += data
        return concat([])

    def flush(self) -> np.ndarray:
        source = io.BytesIO(bytes(self._buf))
        self._buf = bytearray()
        try:
            self._decoder.run(source)
        except av.error.FFmpegError as e:
            raise AudioFormatError(f"could not decode the audio: {e.strerror or e}") from None
        out, self._out = self._out, []
        return concat(out)

    def close(self, wait: bool = True) -> None:
        self._buf = bytearray()
        self._out = []

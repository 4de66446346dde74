"""Float32 mono output at the target rate, via FFmpeg's resampler (av.AudioResampler)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

EMPTY = np.zeros(0, dtype=np.float32)


def concat(parts: list[np.ndarray]) -> np.ndarray:
    """Join output pieces; always a fresh 1-D float32 array (possibly empty)."""
    if not parts:
        return EMPTY.copy()
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts)


def _frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    # The resampler's output is packed float mono, so the array is (1, n).
    out = np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1)
    # Lossy decoders can overshoot full scale slightly; callers rely on [-1, 1].
    return np.clip(out, -1.0, 1.0, out=out)


class MonoResampler:
    """Converts decoded frames (or float32 sample blocks) to float32 mono at ``target_rate``.

    Multi-channel input is mixed down (used by the file decoder); the stream decoder
    rejects it before it gets here.
    """

    def __init__(self, target_rate: int) -> None:
        self.target_rate = target_rate
        # rematrix_maxval=1 keeps a stereo->mono mix within [-1, 1] (average, not sum).
        self._resampler = av.AudioResampler(
            format="flt", layout="mono", rate=target_rate, options={"rematrix_maxval": "1.0"}
        )
        self._pts = 0
        self._used = False

    def frame(self, frame: av.AudioFrame) -> np.ndarray:
        self._used = True
        out = [_frame_to_mono(f) for f in self._resampler.resample(frame) if f is not None]
        return concat(out)

    def samples(self, x: np.ndarray, rate: int) -> np.ndarray:
        """Resample a block of float32 mono samples at ``rate`` (keeps state across calls)."""
        if x.size == 0:
            return EMPTY.copy()
        if rate == self.target_rate:
            return np.clip(x, -1.0, 1.0).astype(np.float32, copy=False)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(x, dtype=np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = rate
        frame.time_base = Fraction(1, rate)
        frame.pts = self._pts
        self._pts += x.size
        return self.frame(frame)

    def flush(self) -> np.ndarray:
        """Drain the resampler's internal delay (end of stream)."""
        if not self._used:
            return EMPTY.copy()
        self._used = False
        out = [_frame_to_mono(f) for f in self._resampler.resample(None) if f is not None]
        return concat(out)

"""Silero VAD (ONNX) as a streaming speech-probability source.

One ONNX session is shared by every stream (onnxruntime's `run` is thread-safe); each stream keeps
its own recurrent state and 64-sample context, exactly as the reference OnnxWrapper in the
`silero-vad` package does, so the model can be fed 32 ms frames as audio arrives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime

FRAME_SAMPLES = 512  # 32 ms at 16 kHz: the only frame size the 16 kHz model accepts
CONTEXT_SAMPLES = 64
SAMPLE_RATE = 16000


class SileroVad:
    def __init__(self, model_path: Path, threads: int = 1) -> None:
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def stream(self) -> VadStream:
        return VadStream(self)

    def _run(self, frame: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        out, new_state = self._session.run(
            None, {"input": frame[None, :], "state": state, "sr": self._sr}
        )
        return float(out[0, 0]), new_state

    def speech_probs(self, audio: np.ndarray) -> np.ndarray:
        """Probabilities for a whole clip (offline use), one per 32 ms frame."""
        stream = self.stream()
        probs = stream.process(audio)
        tail = stream.flush()
        return np.concatenate([probs, tail]) if tail.size else probs


class VadStream:
    """Per-stream VAD state: feed audio of any length, get one probability per completed frame."""

    def __init__(self, vad: SileroVad) -> None:
        self._vad = vad
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, audio: np.ndarray) -> np.ndarray:
        if audio.size:
            self._pending = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        n_frames = self._pending.size // FRAME_SAMPLES
        probs = np.empty(n_frames, dtype=np.float32)
        for i in range(n_frames):
            frame = self._pending[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            x = np.concatenate([self._context, frame])
            probs[i], self._state = self._vad._run(x, self._state)
            self._context = frame[-CONTEXT_SAMPLES:]
        self._pending = self._pending[n_frames * FRAME_SAMPLES :]
        return probs

    def flush(self) -> np.ndarray:
        """Pad the last partial frame with zeros so the stream's tail gets a probability too."""
        if not self._pending.size:
            return np.zeros(0, dtype=np.float32)
        pad = FRAME_SAMPLES - self._pending.size
        return self.process(np.zeros(pad, dtype=np.float32))

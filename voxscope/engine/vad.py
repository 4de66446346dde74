"""Silero VAD v6 (ONNX) as a streaming speech-probability source.

The weights are the Silero VAD v6 ONNX export that faster-whisper ships in its package (pinned by
SHA-256 in model_store). The `silero-vad` PyPI package carries the same model but declares a hard
dependency on PyTorch (gigabytes), which voxscope does not otherwise need.

One ONNX session is shared by every stream (onnxruntime's `run` is thread-safe); each stream keeps
its own LSTM state and the 64-sample context the model expects before each 32 ms frame, so audio
can be fed as it arrives and all complete frames of a chunk go through the model in one call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime

FRAME_SAMPLES = 512  # 32 ms at 16 kHz: the frame size of the 16 kHz model
CONTEXT_SAMPLES = 64


class SileroVad:
    def __init__(self, model_path: Path, threads: int = 1) -> None:
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = threads
        opts.enable_cpu_mem_arena = False
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def stream(self) -> VadStream:
        return VadStream(self)

    def _run(self, frames: np.ndarray, h: np.ndarray,
             c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out, h, c = self._session.run(None, {"input": frames, "h": h, "c": c})
        return out.reshape(-1), h, c

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
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, audio: np.ndarray) -> np.ndarray:
        if audio.size:
            self._pending = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        n = self._pending.size // FRAME_SAMPLES
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        frames = self._pending[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)
        # Each frame is preceded by the last 64 samples of the frame before it.
        contexts = np.empty((n, CONTEXT_SAMPLES), dtype=np.float32)
        contexts[0] = self._context
        if n > 1:
            contexts[1:] = frames[:-1, -CONTEXT_SAMPLES:]
        batch = np.ascontiguousarray(np.concatenate([contexts, frames], axis=1))
        probs, self._h, self._c = self._vad._run(batch, self._h, self._c)
        self._context = frames[-1, -CONTEXT_SAMPLES:].copy()
        self._pending = self._pending[n * FRAME_SAMPLES :]
        return probs.astype(np.float32, copy=False)

    def flush(self) -> np.ndarray:
        """Pad the last partial frame with zeros so the stream's tail gets a probability too."""
        if not self._pending.size:
            return np.zeros(0, dtype=np.float32)
        pad = FRAME_SAMPLES - self._pending.size
        return self.process(np.zeros(pad, dtype=np.float32))

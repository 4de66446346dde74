"""Feeding client audio to a StreamDecoder from an event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from voxscope.audio import StreamDecoder


async def decode(decoder: StreamDecoder, fn: Callable[..., np.ndarray], *args: bytes) -> np.ndarray:
    """Call decoder.feed/flush without stalling the loop.

    Compressed formats are decoded by FFmpeg on the decoder's own thread and feed() waits for it:
    that wait goes to a worker thread. Raw PCM/WAV is plain numpy, cheaper inline.
    """
    if decoder.format in ("pcm", "wav"):
        return fn(*args)
    return await asyncio.to_thread(fn, *args)

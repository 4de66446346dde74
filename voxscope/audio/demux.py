"""Frames of one audio stream, skipping damaged packets: the decode loop streams and files share."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import av
import av.error

from .errors import AudioFormatError


def tolerant_frames(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    max_consecutive_errors: int,
    on_corrupt: Callable[[av.error.FFmpegError, str], AudioFormatError],
    on_nothing: Callable[[str], AudioFormatError],
) -> Iterator[av.AudioFrame]:
    """Decoded frames in order.

    A damaged packet is skipped; a run of more than `max_consecutive_errors` means garbage input
    and raises `on_corrupt(error, message)`. If packets failed and no frame at all came out, the
    end raises `on_nothing(last_message)`.
    """
    failures = consecutive = 0
    last_error = ""
    decoded_any = False
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError as e:
            failures += 1
            consecutive += 1
            last_error = e.strerror or str(e)
            if consecutive > max_consecutive_errors:
                raise on_corrupt(e, last_error) from None
            continue
        consecutive = 0
        for frame in frames:
            decoded_any = True
            yield frame
    if failures and not decoded_any:
        raise on_nothing(last_error)

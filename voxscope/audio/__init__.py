"""Audio decoding: realtime client streams and whole files to float32 mono 16 kHz PCM."""

from .errors import AudioFormatError
from .file_decoder import decode_file, iter_file_chunks, probe_duration
from .stream_decoder import SUPPORTED_FORMATS, TARGET_RATE, StreamDecoder

__all__ = [
    "SUPPORTED_FORMATS",
    "TARGET_RATE",
    "AudioFormatError",
    "StreamDecoder",
    "decode_file",
    "iter_file_chunks",
    "probe_duration",
]

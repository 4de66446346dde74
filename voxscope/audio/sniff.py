"""Recognise audio containers from their first bytes (magic numbers).

The server only trusts the declared ``format`` after checking that the data does
not clearly say otherwise: a client that declares ``mp3`` and sends a WAV file
gets an error naming both, instead of garbage transcripts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import AudioFormatError

# Human-readable names used in error messages.
KIND_NAMES: dict[str, str] = {
    "wav": "WAV (RIFF/WAVE)",
    "riff": "a RIFF file that is not WAVE",
    "ogg-opus": "Ogg/Opus",
    "ogg-speex": "Ogg/Speex",
    "ogg-vorbis": "Ogg/Vorbis",
    "ogg-flac": "Ogg/FLAC",
    "ogg": "Ogg with an unrecognised codec",
    "mp3": "MP3 (MPEG audio)",
    "adts": "AAC (ADTS)",
    "id3": "an ID3-tagged stream",
    "mp4": "MP4/M4A",
    "amr-nb": "AMR-NB",
    "amr-wb": "AMR-WB",
    "amr": "multi-channel AMR",
    "flac": "FLAC",
    "unknown": "unrecognised data",
}

# The declared format a client should use for a recognised kind (for error hints).
FORMAT_FOR_KIND: dict[str, str] = {
    "wav": "wav",
    "ogg-opus": "opus",
    "ogg-speex": "speex",
    "mp3": "mp3",
    "adts": "aac",
    "mp4": "aac",
    "amr-nb": "amr",
}

# Kinds each declared format accepts. "id3" is accepted by mp3 and aac because an
# ID3 tag may front either; the demuxer then decides.
ACCEPTED_KINDS: dict[str, frozenset[str]] = {
    "wav": frozenset({"wav"}),
    "mp3": frozenset({"mp3", "id3"}),
    "aac": frozenset({"adts", "mp4", "id3"}),
    "opus": frozenset({"ogg-opus"}),
    "speex": frozenset({"ogg-speex"}),
    "amr": frozenset({"amr-nb"}),
}

FORMAT_DESCRIPTIONS: dict[str, str] = {
    "pcm": "raw 16-bit little-endian mono PCM",
    "wav": "a PCM WAV (RIFF/WAVE) file",
    "mp3": "MP3 (starting with an ID3 tag or an MPEG audio frame header)",
    "aac": "AAC in an ADTS stream or an MP4/M4A container",
    "opus": "Opus in an Ogg container",
    "speex": "Speex in an Ogg container",
    "amr": "AMR-NB in the '#!AMR' storage format",
}

# Enough to see every magic number below except what follows a long ID3 tag or
# the first Ogg page's segment table.
MIN_SNIFF_BYTES = 12


# Top-level MP4 atoms that can come before moov in a streamable file.
_MP4_LEADING_ATOMS = (b"ftyp", b"free", b"skip", b"wide", b"uuid", b"pdin")


@dataclass(frozen=True)
class Sniffed:
    kind: str
    # True when recognised from a magic number; False for a bare MPEG/ADTS frame
    # sync, which raw PCM samples can contain by chance.
    strong: bool
    # False for an MP4 whose moov index is not at the front (see container.py).
    streamable: bool = True


def _mpeg_audio_header(b: bytes) -> bool:
    """A plausible MPEG-1/2/2.5 layer I/II/III frame header."""
    if len(b) < 4 or b[0] != 0xFF or (b[1] & 0xE0) != 0xE0:
        return False
    version = (b[1] >> 3) & 3
    layer = (b[1] >> 1) & 3
    bitrate = b[2] >> 4
    rate = (b[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate != 15 and rate != 3


def _adts_header(b: bytes) -> bool:
    """A plausible ADTS header: 12-bit sync, layer 00, valid sampling index."""
    return len(b) >= 4 and b[0] == 0xFF and (b[1] & 0xF6) == 0xF0 and ((b[2] >> 2) & 0xF) < 13


def _frame_sync_kind(b: bytes) -> str | None:
    if _adts_header(b):
        return "adts"
    if _mpeg_audio_header(b):
        return "mp3"
    return None


def _ogg_kind(data: bytes | bytearray, final: bool) -> str | None:
    """Codec of the first logical stream, from its beginning-of-stream page."""
    pos = 0
    while True:
        if len(data) < pos + 27:
            return None if not final else "ogg"
        if data[pos : pos + 4] != b"OggS":
            return "ogg"
        nsegs = data[pos + 26]
        payload_at = pos + 27 + nsegs
        if len(data) < payload_at + 8:
            return None if not final else "ogg"
        page_len = 27 + nsegs + sum(data[pos + 27 : payload_at])
        payload = data[payload_at : payload_at + 8]
        if payload.startswith(b"OpusHead"):
            return "ogg-opus"
        if payload.startswith(b"Speex   "):
            return "ogg-speex"
        if payload.startswith(b"\x01vorbis"):
            return "ogg-vorbis"
        if payload.startswith(b"\x7fFLAC"):
            return "ogg-flac"
        if payload.startswith(b"fishead") or payload.startswith(b"fisbone"):
            # Ogg Skeleton (speexenc --skeleton): the codec's page follows.
            pos += page_len
            continue
        return "ogg"


def _mp4_kind(data: bytes | bytearray, final: bool) -> Sniffed | None:
    """MP4 is streamable when its index (moov) comes before the samples (mdat).

    Walks the small top-level atoms that may precede moov (ftyp, free, ...).
    """
    pos = 0
    while True:
        if len(data) < pos + 8:
            return None if not final else Sniffed("mp4", True, streamable=False)
        size, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"moov":
            return Sniffed("mp4", True, streamable=True)
        if kind not in _MP4_LEADING_ATOMS or size < 8 or pos + size > 65536:
            return Sniffed("mp4", True, streamable=False)
        pos += size


def sniff(data: bytes | bytearray, final: bool = False) -> Sniffed | None:
    """Recognise the container of ``data`` (the first bytes of a stream).

    Returns None when more bytes are needed to decide (never when ``final``).
    """
    if len(data) < MIN_SNIFF_BYTES and not final:
        return None
    head = data[:MIN_SNIFF_BYTES]
    if head.startswith(b"RIFF"):
        if len(data) < 12:
            return Sniffed("unknown", False)
        return Sniffed("wav" if data[8:12] == b"WAVE" else "riff", True)
    if head.startswith(b"OggS"):
        kind = _ogg_kind(data, final)
        return None if kind is None else Sniffed(kind, True)
    if head.startswith(b"#!AMR-WB"):
        return Sniffed("amr-wb", True)
    if head.startswith(b"#!AMR\n"):
        return Sniffed("amr-nb", True)
    if head.startswith(b"#!AMR"):
        return Sniffed("amr", True)
    if head.startswith(b"fLaC"):
        return Sniffed("flac", True)
    if head[4:8] == b"ftyp":
        return _mp4_kind(data, final)
    if head.startswith(b"ID3") and len(head) >= 10 and head[3] < 0xFF and head[5] & 0x0F == 0:
        # ID3v2: 10-byte header, then a 28-bit "syncsafe" size (+10 with a footer).
        size = 0
        for byte in head[6:10]:
            size = (size << 7) | (byte & 0x7F)
        end = 10 + size + (10 if head[5] & 0x10 else 0)
        if len(data) < end + 4:
            return None if not final else Sniffed("id3", True)
        return Sniffed(_frame_sync_kind(data[end : end + 4]) or "id3", True)
    kind = _frame_sync_kind(head)
    if kind is not None:
        return Sniffed(kind, False)
    return Sniffed("unknown", False)


def check_declared(fmt: str, found: Sniffed) -> None:
    """Raise AudioFormatError when the data clearly contradicts the declared format."""
    if fmt == "pcm":
        # Raw PCM has no magic number; only refuse data that is clearly a container.
        # (RIFF/WAVE is handled by the caller: it is decoded as wav.)
        if found.strong and found.kind != "wav":
            raise AudioFormatError(_mismatch_message(fmt, found.kind))
        return
    if found.kind in ACCEPTED_KINDS[fmt]:
        return
    if fmt == "amr" and found.kind == "amr-wb":
        raise AudioFormatError(
            "format 'amr' must be AMR-NB (8 kHz, '#!AMR' header); the data is AMR-WB, "
            "which is not supported"
        )
    if fmt in ("opus", "speex") and found.kind not in ("ogg", "ogg-opus", "ogg-speex", "unknown"):
        raise AudioFormatError(
            f"{_mismatch_message(fmt, found.kind)}; {fmt} audio must be in an Ogg container"
        )
    raise AudioFormatError(_mismatch_message(fmt, found.kind))


def _mismatch_message(fmt: str, kind: str) -> str:
    expected = FORMAT_DESCRIPTIONS[fmt]
    if kind == "unknown":
        return f"declared format '{fmt}' but the data does not look like {expected}"
    msg = f"declared format '{fmt}' but the data is {KIND_NAMES[kind]}, not {expected}"
    hint = FORMAT_FOR_KIND.get(kind)
    if hint is not None and hint != fmt:
        msg += f" (declare format '{hint}' for this data)"
    return msg


def _id3v2_end(data: bytes | bytearray) -> int | None:
    """Offset just past a leading ID3v2 tag (0 without one), None if not all here yet."""
    if len(data) < 10:
        return None
    if data[:3] != b"ID3":
        return 0
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if data[5] & 0x10 else 0)


# Where the Xing/Info tag starts after the 4-byte header: MPEG-1 vs 2/2.5, mono vs not.
_XING_SIDE_INFO = {(True, True): 17, (True, False): 32, (False, True): 9, (False, False): 17}
# Bytes needed to see an Info tag with every optional field plus the LAME extension.
_XING_SPAN = 4 + 32 + 8 + 4 + 4 + 100 + 4 + 24


def mp3_gapless_samples(data: bytes | bytearray) -> tuple[bool, int | None]:
    """Exact sample count of an MP3 stream from its LAME/Xing "Info" tag, if present.

    FFmpeg trims the encoder's end padding from this tag only when the input is
    seekable, and a realtime stream is not; the stream decoder uses this count to
    drop that padding itself. Returns (decided, samples); decided is False while
    more leading bytes are needed.
    """
    off = _id3v2_end(data)
    if off is None:
        return False, None
    if len(data) < off + _XING_SPAN:
        return False, None
    head = data[off : off + 4]
    if not _mpeg_audio_header(head) or (head[1] >> 1) & 3 != 1:  # layer III only
        return True, None
    mpeg1 = (head[1] >> 3) & 3 == 3
    mono = head[3] >> 6 == 3
    tag = off + 4 + _XING_SIDE_INFO[(mpeg1, mono)]
    if data[tag : tag + 4] not in (b"Xing", b"Info"):
        return True, None
    flags = struct.unpack_from(">I", data, tag + 4)[0]
    pos = tag + 8
    frames = None
    if flags & 1:
        frames = struct.unpack_from(">I", data, pos)[0]
        pos += 4
    pos += (4 if flags & 2 else 0) + (100 if flags & 4 else 0) + (4 if flags & 8 else 0)
    # The encoder delay and padding live in the LAME extension (also written by
    # FFmpeg's muxer as "Lavf"/"Lavc"), 21 bytes after its version string.
    if frames is None or data[pos : pos + 4] not in (b"LAME", b"Lavf", b"Lavc"):
        return True, None
    b = data[pos + 21 : pos + 24]
    delay = (b[0] << 4) | (b[1] >> 4)
    padding = ((b[1] & 0x0F) << 8) | b[2]
    samples = frames * (1152 if mpeg1 else 576) - delay - padding
    return True, samples if samples > 0 else None

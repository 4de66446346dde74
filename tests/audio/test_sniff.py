"""Container recognition from the first bytes (sniff.py)."""

from __future__ import annotations

import struct

import numpy as np

from tests.audio.media import speech, speech_as
from voxscope.audio import StreamDecoder
from voxscope.audio.sniff import mp3_gapless_samples, sniff

ID3_TAG = b"ID3\x04\x00\x00\x00\x00\x00\x20" + b"TIT2\x00\x00\x00\x05\x00\x00\x03abcd" + bytes(17)


def atom(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def test_kinds() -> None:
    assert sniff(b"RIFF\0\0\0\0WAVEfmt ").kind == "wav"
    assert sniff(b"#!AMR\n" + bytes(10)).kind == "amr-nb"
    assert sniff(b"#!AMR-WB\n" + bytes(10)).kind == "amr-wb"
    assert sniff(b"fLaC" + bytes(20)).kind == "flac"
    assert sniff(speech_as("opus", 16000)).kind == "ogg-opus"
    assert sniff(speech_as("aac", 16000)).kind == "adts"
    found = sniff(speech_as("mp3", 16000))
    assert found.kind == "mp3" and found.strong  # ID3-tagged
    assert sniff(bytes(64)).kind == "unknown"


def test_needs_more_bytes_until_it_can_tell() -> None:
    opus = speech_as("opus", 16000)
    assert sniff(opus[:11]) is None
    assert sniff(opus[:30]) is None  # Ogg page header, codec packet not here yet
    assert sniff(opus[:30], final=True).kind == "ogg"
    # Past an ID3 tag to the first frame.
    aac = speech_as("aac", 16000)
    assert sniff(ID3_TAG + aac[:1]) is None
    assert sniff(ID3_TAG + aac[:4]).kind == "adts"


def test_mp4_streamable_when_moov_leads() -> None:
    ftyp = atom(b"ftyp", b"M4A \0\0\0\0isomM4A ")
    assert sniff(ftyp + atom(b"free") + atom(b"moov", bytes(100))).streamable
    assert not sniff(ftyp + atom(b"mdat", bytes(100))).streamable
    assert sniff(ftyp) is None
    assert not sniff(ftyp, final=True).streamable


def test_id3_tagged_adts_is_aac() -> None:
    data = ID3_TAG + speech_as("aac", 16000)
    with StreamDecoder("aac", 16000) as dec:
        y = np.concatenate([dec.feed(data), dec.flush()])
    assert abs(len(y) - len(speech(16000))) < 800


def test_lame_tag_gives_exact_length() -> None:
    mp3 = speech_as("mp3", 16000)
    assert mp3_gapless_samples(mp3[:50]) == (False, None)
    assert mp3_gapless_samples(mp3) == (True, len(speech(16000)))  # exact length
    assert mp3_gapless_samples(speech_as("aac", 16000)) == (True, None)

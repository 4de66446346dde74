"""The command line as a user runs it: `python -m voxscope.cli transcribe|models|serve` subprocesses."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import AUDIO_DIR, ServerProcess, clip, error_rate, free_port

REPO = Path(__file__).resolve().parents[2]
PROFILES = ("fun-asr-realtime", "fun-asr-flash-8k-realtime", "paraformer-realtime-v1",
            "paraformer-realtime-v2", "paraformer-realtime-8k-v1", "paraformer-realtime-8k-v2")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("VOXSCOPE_API_KEYS", "VOXSCOPE_HOST", "VOXSCOPE_INSECURE", "VOXSCOPE_PORT"):
        env.pop(key, None)  # the tests below are about the unconfigured defaults
    return env


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voxscope.cli", *map(str, args)], cwd=REPO,
                          env=_env(), capture_output=True, text=True, timeout=timeout)


def _unwrapped(text: str) -> str:
    """Output without whitespace and box-drawing characters (rich wraps long paths in boxes)."""
    return re.sub(r"[\s\u2500-\u257f]", "", text)


def _ms(h: str, m: str, s: str, ms: str) -> int:
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def parse_srt(text: str) -> list[tuple[int, int, int, str]]:
    """(index, begin ms, end ms, text) per cue; raises AssertionError on any malformed cue."""
    cues = []
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    assert blocks, "no cues"
    for block in blocks:
        lines = block.splitlines()
        assert len(lines) >= 3, f"a cue needs an index, a time line and text: {block!r}"
        assert lines[0].strip().isdigit(), f"cue index is not a number: {lines[0]!r}"
        m = re.fullmatch(r"(\d{2}):([0-5]\d):([0-5]\d),(\d{3}) --> (\d{2}):([0-5]\d):([0-5]\d),(\d{3})",
                         lines[1].strip())
        assert m, f"bad SRT time line: {lines[1]!r}"
        body = " ".join(line.strip() for line in lines[2:]).strip()
        assert body, f"empty cue text: {block!r}"
        cues.append((int(lines[0]), _ms(*m.groups()[:4]), _ms(*m.groups()[4:]), body))
    return cues


def assert_cue_times(cues: list[tuple[int, int, int, str]], duration_s: float) -> None:
    assert [c[0] for c in cues] == list(range(1, len(cues) + 1)), "cues not numbered 1..n"
    prev_end = 0
    for _, begin, end, body in cues:
        assert begin < end, (begin, end, body)
        assert begin >= prev_end, f"cue starts at {begin} ms before the previous one ended ({prev_end})"
        assert end <= duration_s * 1000 + 50, (end, duration_s)
        prev_end = end


def _parse_json_documents(stdout: str) -> list[dict]:
    """The whole output must be machine-readable: one JSON value (object or array) or JSON Lines."""
    try:
        value = json.loads(stdout)
        return value if isinstance(value, list) else [value]
    except json.JSONDecodeError:
        pass
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        return [json.loads(line) for line in lines]
    except json.JSONDecodeError as exc:
        raise AssertionError(
            "--output json for several files is neither one JSON document nor JSON Lines "
            f"({exc}); output starts: {stdout[:300]!r}") from None


# -- transcribe ---------------------------------------------------------------------------------
def test_transcribe_wav_prints_the_text():
    c = clip("en_librispeech_1995-1837-0001")
    res = cli("transcribe", c["file"])
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, res.stdout
    assert error_rate("en", c["reference"], lines[0]) <= 0.1, lines[0]


def test_transcribe_several_files_of_several_formats():
    # flac (44.1 kHz stereo), Ogg Opus (48 kHz), wav (16 kHz Mandarin): one line each, in order.
    ids = ["en_jfk_inaugural", "en_fleurs_000", "zh_paddlespeech_zh"]
    res = cli("transcribe", *(clip(i)["file"] for i in ids))
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert len(lines) == len(ids), res.stdout
    for cid, line in zip(ids, lines, strict=True):
        c = clip(cid)
        assert error_rate(c["lang"], c["reference"], line) <= 0.1, (cid, line)


def test_transcribe_srt_is_valid():
    c = clip("en_osr_us_000_0034_8k")  # ten sentences with pauses: several cues
    res = cli("transcribe", c["file"], "--output", "srt")
    assert res.returncode == 0, res.stderr
    cues = parse_srt(res.stdout)
    assert len(cues) >= 5, res.stdout
    assert_cue_times(cues, c["duration_s"])
    assert error_rate("en", c["reference"], " ".join(cue[3] for cue in cues)) <= 0.1


def test_transcribe_vtt_is_valid():
    c = clip("en_jfk_inaugural")
    res = cli("transcribe", c["file"], "--output", "vtt")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("WEBVTT"), res.stdout[:50]
    body = res.stdout[len("WEBVTT"):]
    times = re.findall(r"^(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})$",
                       body, flags=re.M)
    assert times, res.stdout
    prev = 0
    for t in times:
        begin, end = _ms(*t[:4]), _ms(*t[4:])
        assert prev <= begin < end <= c["duration_s"] * 1000 + 50, (t, prev)
        prev = end
    text = " ".join(line for line in body.splitlines()
                    if line.strip() and "-->" not in line and not line.strip().isdigit())
    assert error_rate("en", c["reference"], text) <= 0.1, text


def test_transcribe_json_has_sentences_with_word_timestamps():
    c = clip("en_librispeech_1995-1837-0001")
    res = cli("transcribe", c["file"], "--output", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert Path(doc["file"]).name == c["file"].name
    sentences = doc["sentences"]
    assert sentences and all(s["text"].strip() for s in sentences)
    duration_ms = c["duration_s"] * 1000
    prev_end = 0
    for s in sentences:
        words = s["words"]
        assert words, s
        assert isinstance(s["begin_time"], int) and isinstance(s["end_time"], int)
        assert s["begin_time"] <= words[0]["begin_time"] and words[-1]["end_time"] <= s["end_time"]
        for w in words:
            assert isinstance(w["begin_time"], int) and isinstance(w["end_time"], int), w
            assert w["text"].strip(), w
            assert prev_end <= w["begin_time"] <= w["end_time"] <= duration_ms + 50, (w, prev_end)
            prev_end = w["end_time"]
    text = " ".join(s["text"] for s in sentences)
    assert error_rate("en", c["reference"], text) <= 0.1, text
    words_text = " ".join(w["text"] + w["punctuation"] for s in sentences for w in s["words"])
    assert error_rate("en", text, words_text) == 0.0, (text, words_text)
    # Word times are real alignments, not a uniform spread: speech starts after the leading pause
    # and the words do not all have the same length.
    lengths = {w["end_time"] - w["begin_time"] for s in sentences for w in s["words"]}
    assert len(lengths) > 3, lengths


def test_transcribe_json_for_several_files_is_machine_readable():
    ids = ["en_ldc93s1", "zh_paddlespeech_zh"]
    res = cli("transcribe", *(clip(i)["file"] for i in ids), "--output", "json")
    assert res.returncode == 0, res.stderr
    docs = _parse_json_documents(res.stdout)
    assert [Path(d["file"]).name for d in docs] == [clip(i)["file"].name for i in ids]
    for cid, doc in zip(ids, docs, strict=True):
        c = clip(cid)
        text = " ".join(s["text"] for s in doc["sentences"])
        assert error_rate(c["lang"], c["reference"], text) <= 0.4, (cid, text)


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "truncated"])
def test_transcribe_bad_input_gives_a_clear_error(tmp_path, kind):
    if kind == "missing":
        path = tmp_path / "no-such-file.wav"
    else:
        path = tmp_path / f"{kind}.wav"
        if kind == "empty":
            path.write_bytes(b"")
        elif kind == "garbage":
            path.write_bytes(os.urandom(1000) + b"this is not audio" * 100)
        else:  # a real FLAC file cut after its header and a few bytes of the first frame
            path.write_bytes((AUDIO_DIR / "en_jfk_inaugural.flac").read_bytes()[:120])
            path = path.rename(tmp_path / "truncated.flac")
    res = cli("transcribe", path, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode != 0, f"exit 0 for a {kind} file; output: {out[-500:]!r}"
    assert "Traceback" not in out, f"a traceback instead of a message for a {kind} file:\n{out[-2000:]}"
    assert path.name in _unwrapped(out), f"the message does not name the file: {out[-500:]!r}"


def test_transcribe_one_bad_file_among_good_ones_is_named(tmp_path):
    bad = tmp_path / "broken.ogg"
    bad.write_bytes(b"OggS" + os.urandom(3000))
    res = cli("transcribe", clip("en_ldc93s1")["file"], bad, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "Traceback" not in out, out[-2000:]
    assert "broken.ogg" in _unwrapped(out), out[-500:]


# -- models -------------------------------------------------------------------------------------
def test_models_lists_profiles_and_the_installed_model():
    from voxscope.engine.model_store import ModelStore

    res = cli("models", timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines if line.strip()}
    for name in PROFILES:
        assert name in rows, f"profile {name} not listed:\n{res.stdout}"
        assert "installed" in rows[name] and "MISSING" not in rows[name], rows[name]
        assert "whisper-base" in rows[name], rows[name]
    assert re.search(r"\b8000\b", rows["paraformer-realtime-8k-v2"])
    assert re.search(r"\b16000\b", rows["fun-asr-realtime"])
    assert "any" in rows["paraformer-realtime-v2"].split()
    model_dir = ModelStore().resolve("whisper-base")
    assert f"whisper-base: {model_dir}" in lines, res.stdout
    assert (model_dir / "model.bin").is_file()
    assert any(line.startswith("silero-vad: ") and line.endswith(".onnx") for line in lines), res.stdout


# -- serve --------------------------------------------------------------------------------------
def _outbound_ipv4() -> str | None:
    """This machine's non-loopback address, if it has one (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.254.254.254", 9))
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def test_serve_on_all_interfaces_without_keys_is_refused(tmp_path):
    port = free_port()
    try:
        res = cli("serve", "--host", "0.0.0.0", "--port", port, "--data-dir", tmp_path / "data",
                  timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("serve --host 0.0.0.0 without keys started instead of refusing")
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    msg = res.stderr.lower()
    assert "key" in msg and "--insecure" in msg, res.stderr


def test_serve_on_all_interfaces_with_insecure_starts():
    srv = ServerProcess(args=["--host", "0.0.0.0", "--insecure"]).start()
    try:
        health = srv.health()
        assert health["status"] == "ok"
        assert "0.0.0.0" in srv.log() and "insecure" in srv.log().lower(), srv.log()
        ip = _outbound_ipv4()
        if ip:  # really reachable from outside the loopback interface
            assert httpx.get(f"http://{ip}:{srv.port}/health", timeout=5).status_code == 200
    finally:
        srv.stop()


def test_serve_without_keys_accepts_any_key_on_loopback_only():
    srv = ServerProcess().start()
    try:
        assert srv.health()["status"] == "ok"
        log = srv.log()
        assert "any key" in log, log
        assert re.search(r"127\.0\.0\.1 only", log), log
        ip = _outbound_ipv4()
        if ip:  # not reachable on another interface
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://{ip}:{srv.port}/health", timeout=5)
    finally:
        srv.stop()

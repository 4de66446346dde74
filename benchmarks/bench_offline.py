"""Offline transcription speed: voxscope's VAD-cut, batched path vs plain faster-whisper.

Builds a long file from the real clips in shared/audio (each clip followed by a pause, repeated
until it is at least `--minutes` long), then times, on the same model and the same audio:

- plain faster-whisper: `WhisperModel.transcribe(audio)` with its defaults (beam 5);
- voxscope in-process: `engine.offline.transcribe_chunks` (what `voxscope transcribe` runs);
- the `voxscope transcribe` command end to end (model loading included).

Prints wall time, real-time factor, the ratio voxscope/faster-whisper (target <= 0.8), and the
word error rate of both against the concatenated references (English clips only), so speed is
not bought with accuracy.

    python benchmarks/bench_offline.py --minutes 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import clip, error_rate, manifest, pcm16, wav_bytes  # noqa: E402


def build(minutes: float) -> tuple[bytes, str]:
    pause = bytes(int(1.5 * 16000) * 2)
    parts, refs, total = [], [], 0.0
    english = [c for c in manifest() if c["lang"] == "en"]
    while total < minutes * 60:
        for c in english:
            pcm = pcm16(str(clip(c["id"])["file"]), 16000)
            parts += [pcm, pause]
            refs.append(c["reference"])
            total += len(pcm) / 32000 + 1.5
    return b"".join(parts), " ".join(refs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=5.0)
    args = ap.parse_args()

    from faster_whisper import WhisperModel

    from voxscope.config import load_settings
    from voxscope.engine.hub import Engine
    from voxscope.engine.model_store import ModelStore
    from voxscope.engine.offline import OfflineOptions, transcribe_chunks

    pcm, reference = build(args.minutes)
    duration = len(pcm) / 32000
    tmp = Path(tempfile.mkdtemp(prefix="voxscope-bench-"))
    wav = tmp / "long.wav"
    wav.write_bytes(wav_bytes(pcm))
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    print(f"audio: {duration / 60:.1f} min of English speech with pauses; "
          f"machine: {platform.machine()} {os.cpu_count()} cpus")

    model_dir = ModelStore().resolve("whisper-base")
    fw = WhisperModel(str(model_dir), device="cpu", compute_type="int8")
    t = time.monotonic()
    fw_text = " ".join(s.text.strip() for s in fw.transcribe(audio)[0])
    fw_s = time.monotonic() - t
    del fw

    engine = Engine(load_settings())
    sched = engine.scheduler("whisper-base")
    chunks = (audio[i:i + 30 * 16000] for i in range(0, audio.size, 30 * 16000))
    t = time.monotonic()
    vs_text = " ".join(s.text for s in transcribe_chunks(chunks, sched, engine.vad,
                                                         OfflineOptions(language=None)))
    vs_s = time.monotonic() - t
    engine.close()

    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "voxscope.cli", "transcribe", str(wav), "--no-progress"],
                   check=True, capture_output=True)
    cli_s = time.monotonic() - t

    result = {
        "audio_minutes": round(duration / 60, 2),
        "faster_whisper_s": round(fw_s, 1), "faster_whisper_rtf": round(fw_s / duration, 3),
        "voxscope_s": round(vs_s, 1), "voxscope_rtf": round(vs_s / duration, 3),
        "ratio_voxscope_over_faster_whisper": round(vs_s / fw_s, 2),
        "voxscope_cli_wall_s_incl_model_load": round(cli_s, 1),
        "wer_faster_whisper": round(error_rate("en", reference, fw_text), 3),
        "wer_voxscope": round(error_rate("en", reference, vs_text), 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""The file lane's replica loads from an int8 copy of the model (issue 12, Memory).

CTranslate2 quantizes a float16 model.bin in memory at load, ~+115 MB for a moment: the lane's
replica loaded while streams and a file task decode, so that moment was the server's peak. The
copy (`voxscope.engine.int8_copy`) must decode exactly like the model it was made from, load with
a lower peak RSS (measured in child processes: RSS, not speed), be written once, and never stop a
replica from loading when it cannot be made.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import clip_pcm
from voxscope.engine import int8_copy
from voxscope.engine.model_store import ModelStore
from voxscope.engine.types import DecodeOptions
from voxscope.engine.whisper_backend import WhisperBackend

CLIPS = ["en_jfk_inaugural", "en_beckett", "en_fleurs_000", "zh_funasr_asr_example"]
FULL = DecodeOptions(beam_size=5, full_window=True, word_timestamps=True)

LOAD = """
import sys
from voxscope import allocator
allocator.configure(trim_period_s=None)
from voxscope.engine.whisper_backend import WhisperBackend
WhisperBackend(sys.argv[1], cpu_threads=1)
print([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0])
"""


@pytest.fixture(scope="module")
def model() -> Path:
    return ModelStore().resolve("whisper-base")


@pytest.fixture(scope="module")
def copy(model, tmp_path_factory) -> Path:
    dest = int8_copy.copy_for(model, tmp_path_factory.mktemp("cache"))
    assert dest != model and (dest / "model.bin").is_file()
    return dest


def audio(clip_id: str) -> np.ndarray:
    return np.frombuffer(clip_pcm(clip_id), "<i2").astype(np.float32) / 32768


def test_copy_decodes_exactly_like_the_model(model, copy):
    texts = []
    for path in (model, copy):
        backend = WhisperBackend(path, cpu_threads=1)
        texts.append([backend.decode_batch([(audio(c), FULL)])[0].text for c in CLIPS])
        del backend
    assert texts[0] == texts[1]
    assert all(texts[0])


def test_copy_loads_with_a_lower_peak(model, copy):
    def peak_mb(path: Path) -> float:
        out = subprocess.run([sys.executable, "-c", LOAD, str(path)], capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return int(out.stdout.strip().splitlines()[-1]) / 1024

    original, int8 = peak_mb(model), peak_mb(copy)
    print(json.dumps({"load_peak_mb": {"float16": original, "int8_copy": int8}}))
    assert int8 < original - 50, (original, int8)  # measured: 324 -> 221 MB


def test_copy_is_written_once(model, copy):
    stamp = (copy / "model.bin").stat().st_mtime_ns
    assert int8_copy.copy_for(model, copy.parents[1]) == copy
    assert (copy / "model.bin").stat().st_mtime_ns == stamp


def test_no_copy_leaves_the_model_in_use(tmp_path):
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.bin").write_bytes(b"not a model")
    assert int8_copy.copy_for(broken, tmp_path / "cache") == broken


def test_an_unknown_model_format_is_not_converted(tmp_path):
    """A model.bin of a layout this parser was not written for is left alone (no misread
    weights): the replica loads the original model."""
    src = tmp_path / "future-model"
    src.mkdir()
    (src / "model.bin").write_bytes((99).to_bytes(4, "little") + b"\x00" * 64)
    assert int8_copy.copy_for(src, tmp_path / "cache") == src
    assert not list((tmp_path / "cache").glob("int8/*/model.bin"))

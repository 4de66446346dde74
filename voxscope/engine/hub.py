"""The engine as the rest of voxscope sees it: loaded models, their schedulers, the VAD."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from voxscope.config import LocalModel, Profile, Settings
from voxscope.engine import int8_copy
from voxscope.engine.load import calibrate
from voxscope.engine.model_store import ModelStore
from voxscope.engine.observer import EngineObserver
from voxscope.engine.offline import OfflineOptions, Sentence, transcribe_chunks
from voxscope.engine.recognizer import Boundary, Emit, RecognizerConfig, StreamingRecognizer
from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.threads import ThreadPools, decode_threads, plan
from voxscope.engine.types import Priority
from voxscope.engine.vad import SileroVad
from voxscope.engine.whisper_backend import WhisperBackend

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ModelStore(settings.cache_dir)
        # Before any model loads or decodes (the BLAS cap is process-wide).
        self.threads = ThreadPools(plan(settings.blas_threads, settings.cpu_threads))
        self.vad = SileroVad(self.store.silero_vad_path())
        self._schedulers: dict[str, InferenceScheduler] = {}
        self._lock = threading.Lock()
        self.observer = EngineObserver()  # replaced by the service layer's metrics

    def local_model(self, name: str) -> LocalModel:
        # A profile may name a configured model or give a bundled name / folder directly.
        return self.settings.models.get(name) or LocalModel(path=name)

    def scheduler(self, model: str) -> InferenceScheduler:
        with self._lock:
            sched = self._schedulers.get(model)
            if sched is None:
                spec = self.local_model(model)
                path = self.store.resolve(spec.path)
                log.info("loading model %s from %s", model, path)
                backend = WhisperBackend(path, device=spec.device, compute_type=spec.compute_type,
                                         cpu_threads=decode_threads(self.threads.limits,
                                                                    spec.device),
                                         workers=self._workers(spec))
                sched = InferenceScheduler(backend, max_batch=self.settings.max_batch,
                                           max_wait_s=self.settings.batch_wait_ms / 1000,
                                           load_window_s=self.settings.load_window_s,
                                           realtime_hold_s=self.settings.realtime_hold_s,
                                           realtime_idle_s=self.settings.realtime_idle_s,
                                           file_max_defer_s=self.settings.file_max_defer_s,
                                           first_preview_ahead=self.settings.first_preview_ahead,
                                           file_lane=self._file_lane(spec, path),
                                           file_lane_nice=self.settings.file_lane_nice,
                                           file_lane_batch=self.settings.file_lane_batch,
                                           file_lane_idle_s=self.settings.file_lane_idle_s,
                                           file_lane_shared=self.settings.file_lane_shared)
                # Read self.observer at call time: it may be replaced after the model loads.
                sched.on_decoded = lambda a, d, w, m=model: self.observer.decoded(m, a, d, w)
                sched.busy_final_share = self.settings.speculate_max_final_share
                sched.second_realtime = self.settings.second_replica_realtime
                self._schedulers[model] = sched
            return sched

    def _workers(self, spec: LocalModel) -> int:
        """CTranslate2 replicas of a model: `model_workers` on CPU, one on a GPU (not measured)."""
        return self.settings.model_workers if spec.device == "cpu" else 1

    def _file_lane(self, spec: LocalModel, path: Path) -> Callable[[], WhisperBackend] | None:
        """How the scheduler builds its file lane's model replica (None: no lane)."""
        threads = self.settings.file_lane_threads
        if threads <= 0 or (self.settings.file_lane_shared and self._workers(spec) > 1):
            return None
        def build() -> WhisperBackend:
            # An int8 copy loads without the float16 model's ~115 MB peak (the replica loads
            # while streams and files decode); it decodes identically.
            src = (int8_copy.copy_for(path, self.store.cache_dir)
                   if spec.device == "cpu" and spec.compute_type in ("int8", "int8_float32")
                   else path)
            return WhisperBackend(src, device=spec.device, compute_type=spec.compute_type,
                                  cpu_threads=threads)
        return build

    def preload(self) -> None:
        for prof in self.settings.profiles.values():
            self.scheduler(prof.model)

    def time_finals(self) -> None:
        """Time one final decode per loaded model, before any traffic: load admission's first
        price of a stream (a server admitting realtime streams calls it; a worker need not)."""
        for name, sched in self.schedulers.items():
            log.info("model %s: one final decode takes %.2f s", name,
                     calibrate(sched.backend, sched.load,
                               full_window=self.settings.final_window == "full"))

    def recognizer(self, profile: Profile, config: RecognizerConfig, emit: Emit,
                   boundary: Boundary | None = None) -> StreamingRecognizer:
        rec = StreamingRecognizer(self.scheduler(profile.model), self.vad, config, emit, boundary)
        rec.on_timing = lambda kind, s, m=profile.name: self.observer.timing(m, kind, s)
        rec.speculate_max_final_share = self.settings.speculate_max_final_share
        rec.drop_previews_when_behind = self.settings.drop_previews_when_behind
        rec.full_final_when_unpreviewed = self.settings.full_final_when_unpreviewed
        rec.early_recheck = self.settings.early_recheck
        rec.recheck_language_switch = self.settings.recheck_language_switch
        return rec

    def transcribe(self, profile: Profile, audio: np.ndarray, opts: OfflineOptions,
                   priority: Priority = Priority.SYNC) -> list[Sentence]:
        """Blocking whole-buffer transcription (call from a worker thread); a sync request
        unless `priority` says otherwise."""
        return list(transcribe_chunks([audio], self.scheduler(profile.model), self.vad, opts,
                                      priority=priority))

    def transcribe_stream(self, profile: Profile, chunks, opts: OfflineOptions,
                          checkpoint=None, priority: Priority = Priority.SYNC) -> Iterator[Sentence]:
        """Sentences of a chunked (possibly hours-long) stream as they are decoded; blocking.
        File tasks pass Priority.FILE, so realtime streams and sync requests go first."""
        return transcribe_chunks(chunks, self.scheduler(profile.model), self.vad, opts,
                                 checkpoint=checkpoint, priority=priority)

    def tokenize(self, profile: Profile, text: str, language: str | None = None) -> list[int]:
        """Text as the model's tokens (usage counts, OpenAI segments)."""
        if not text:
            return []
        backend = self.scheduler(profile.model).backend
        lang = language if language in backend.languages else "en"
        return backend.tokenizer("transcribe", lang).encode(text)

    def languages(self, profile: Profile) -> list[str]:
        backend = self.scheduler(profile.model).backend
        known = backend.languages
        if profile.languages is None:
            return known
        return [lang for lang in profile.languages if lang in known]

    @property
    def schedulers(self) -> dict[str, InferenceScheduler]:
        return dict(self._schedulers)

    def close(self) -> None:
        with self._lock:
            for sched in self._schedulers.values():
                sched.close()
            self._schedulers.clear()

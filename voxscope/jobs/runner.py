"""Running one file-transcription task: fetch, decode, transcribe, checkpoint, publish.

A task is claimed under a lease that a background thread renews; if the worker dies the lease
expires and another worker (or this one restarted) takes the task over and resumes each
channel after its last saved chunk. Only decoded audio of the current stretch is in memory.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from voxscope.audio.file_decoder import iter_file_chunks, probe_audio
from voxscope.audio.pcm import TARGET_RATE as SR
from voxscope.config import Settings
from voxscope.engine.hotwords import hotwords_from
from voxscope.engine.hub import Engine
from voxscope.engine.offline import OfflineOptions, context_of
from voxscope.engine.types import Priority
from voxscope.engine.vad import FRAME_SAMPLES
from voxscope.errors import ServiceError
from voxscope.inputs import materialize
from voxscope.jobs import results
from voxscope.jobs.repository import FAILED, SUCCEEDED, LeaseLost, TaskRepository
from voxscope.profile_lookup import FILE_KINDS, resolve_profile
from voxscope.storage.tables import TaskChunk, TaskFile
from voxscope.storage.usage import UsageDelta, UsageStore, today

log = logging.getLogger(__name__)

DECODE_BLOCK_S = 10.0  # audio handed to the engine per step (and how often a stop is noticed)
PROGRESS_S = 5.0  # report the position on the task API at least this often (audio seconds)
# Audio before a resume point that goes through VAD again (no window starts in it): a VAD started
# cold at the resume point ended a later window a frame or two off (64 ms), so the resumed text
# differed; after 3 s its state matches the uninterrupted run's (tests/hardening/test_resume_context.py).
VAD_WARMUP_FRAMES = 94
TOO_LONG = "InvalidParameter.AudioTooLong"
NO_CHANNEL = "InvalidParameter.ChannelId"


class FileError(ServiceError):
    """A file the task cannot transcribe (too long, no such channel)."""


class _Stopping(Exception):
    """The worker is shutting down: give the task back, it resumes elsewhere."""


class TaskRunner:
    def __init__(self, settings: Settings, engine: Engine, repo: TaskRepository) -> None:
        self.settings = settings
        self.engine = engine
        self.repo = repo
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()
        self.requeue = None  # set by the pool: puts a released task back on the queue
        self.usage = UsageStore(repo.db)

    # -- one task -------------------------------------------------------------------------------
    def run(self, task_id: str) -> None:
        attempt = self.repo.claim(task_id, self.worker_id, self.settings.task_lease_s)
        if attempt is None:
            return  # finished, cancelled, or running elsewhere: a duplicate message
        log.info("task %s: attempt %d on %s", task_id, attempt, self.worker_id)
        lost = threading.Event()
        stop_renew = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(task_id, lost, stop_renew),
                                   name=f"lease-{task_id[:8]}", daemon=True)
        renewer.start()
        finished = False
        try:
            finished = self._run(task_id, attempt, lost)
        except LeaseLost:
            log.warning("task %s: lease lost, another worker has it", task_id)
        except _Stopping:
            if self.repo.release(task_id, self.worker_id) and self.requeue is not None:
                self.requeue(task_id)
            log.info("task %s: released for restart", task_id)
        except Exception as exc:  # a bug must not leave the task RUNNING forever
            log.exception("task %s failed", task_id)
            try:
                self.repo.finish(task_id, self.worker_id, FAILED, "InternalError",
                                 f"internal error: {exc}", also=self._usage(failed=True))
                finished = True
            except LeaseLost:
                pass
        finally:
            stop_renew.set()
            renewer.join(timeout=5)
            if finished:
                shutil.rmtree(self._workdir(task_id), ignore_errors=True)

    def _renew(self, task_id: str, lost: threading.Event, stop: threading.Event) -> None:
        period = max(self.settings.task_lease_s / 3, 0.2)
        while not stop.wait(period):
            try:
                if not self.repo.renew(task_id, self.worker_id, self.settings.task_lease_s):
                    lost.set()
                    return
            except Exception:  # database briefly unavailable: try again next period
                log.warning("task %s: lease renewal failed", task_id, exc_info=True)

    def _workdir(self, task_id: str) -> Path:
        return self.settings.data_dir / "work" / task_id

    def _run(self, task_id: str, attempt: int, lost: threading.Event) -> bool:
        view = self.repo.view(task_id)
        assert view is not None
        request = view.task.request
        try:  # resolved when submitted; the configuration may have changed since
            profile = resolve_profile(self.settings, view.task.model, FILE_KINDS)
        except ServiceError as exc:
            self.repo.finish(task_id, self.worker_id, FAILED, exc.code, exc.message)
            return True
        failures: list[tuple[str, str]] = []
        succeeded = 0
        for f in view.files:
            if f.status == SUCCEEDED:
                succeeded += 1
                continue
            if f.status == FAILED:
                failures.append((f.code or "", f.message or ""))
                continue
            try:
                doc, duration = self._file(view.task.id, view.task.form, f, attempt, request,
                                           profile, lost)
            except ServiceError as exc:  # input, fetch, audio and file refusals
                code, message = exc.code, exc.message
                log.info("task %s file %d failed: %s %s", task_id, f.index, code, message)
                self.repo.finish_file(task_id, self.worker_id, f.index, status=FAILED, code=code,
                                      message=message)
                failures.append((code, message))
                continue
            self.repo.finish_file(task_id, self.worker_id, f.index, status=SUCCEEDED, result=doc,
                                  duration_s=duration)
            succeeded += 1
        if succeeded:
            self.repo.finish(task_id, self.worker_id, SUCCEEDED, also=self._usage(failed=False))
        else:
            code, message = failures[0] if failures else ("InternalError", "no input file")
            self.repo.finish(task_id, self.worker_id, FAILED, code, message,
                             also=self._usage(failed=True))
        return True

    def _usage(self, failed: bool):
        """The ended task's usage record, written with its end (same transaction): here, as this
        may be a separate worker process; the shared database adds it to its owner's day. The
        seconds are the task's `usage` (its files' durations, rounded up)."""
        def write(s, task) -> None:
            files = s.scalars(select(TaskFile).where(TaskFile.task_id == task.id)).all()
            self.usage.add([UsageDelta(task.owner, task.model, today(),
                                       math.ceil(results.billed_seconds(files)), tasks=1,
                                       failures=int(failed))], session=s)
        return write

    # -- one file -------------------------------------------------------------------------------
    def _file(self, task_id: str, form: str, f: TaskFile, attempt: int, request: dict[str, Any],
              profile, lost: threading.Event) -> tuple[dict[str, Any], float]:
        opts = request.get("options", {})
        workdir = self._workdir(task_id) / str(f.index)
        workdir.mkdir(parents=True, exist_ok=True)
        path = self._source(f.url, workdir)
        info = probe_audio(path)
        cap = self.settings.max_async_seconds
        if info.duration_s is not None and info.duration_s > cap + 1:
            raise FileError(TOO_LONG, f"the audio is {info.duration_s:.0f} s long; files of at "
                                      f"most {cap:.0f} s are accepted")
        channels = opts.get("channels") or [0]
        for c in channels:
            if c >= info.channels:
                raise FileError(NO_CHANNEL, f"channel_id {c} does not exist: the file has "
                                            f"{info.channels} channel(s)")
        if info.duration_s:
            self.repo.set_duration(task_id, self.worker_id, info.duration_s)
        decode_opts = OfflineOptions(
            language=opts.get("language"), allowed_languages=tuple(opts.get("languages") or ()) or
            None, prompt=opts.get("prompt"), hotwords=hotwords_from(opts.get("hotwords") or []),
            remove_disfluencies=bool(opts.get("remove_disfluencies")),
            # windows are batched; a weak one is decoded again with the text before it
            condition_on_previous_text=True,
            # no random sampling: a resumed task decodes exactly as the first attempt did
            temperature_fallback=False,
            # two windows in flight: four raised the task's peak RSS by ~80 MB at the same CPU
            batch=2)
        by_channel: dict[int, list[dict]] = {}
        duration = 0.0
        for c in channels:
            sentences, seconds = self._channel(task_id, f.index, c, path,
                                               c if info.channels > 1 else None, attempt,
                                               decode_opts, profile, lost)
            by_channel[c] = sentences
            duration = max(duration, seconds)
        meta = {"format": info.format, "codec": info.codec, "sample_rate": info.sample_rate,
                "duration": info.duration_s or duration}
        if form == "qwen":
            doc = results.qwen_document(f.url, meta, by_channel, bool(opts.get("enable_words")))
        else:
            doc = results.paraformer_document(f.url, meta, by_channel)
        return doc, meta["duration"]

    def _source(self, url: str, workdir: Path) -> Path:
        """The input as a local file. A download finished by an earlier attempt is reused, so a
        resumed task does not fetch a 2 GB file again."""
        record = workdir / "source.json"
        try:
            saved = json.loads(record.read_text())
            path = Path(saved["path"])
            if saved["url"] == url and path.stat().st_size == saved["size"]:
                return path
        except (OSError, ValueError, KeyError, TypeError):
            pass
        path = materialize(url, self.settings, workdir, max_bytes=self.settings.max_async_bytes)
        record.write_text(json.dumps({"url": url, "path": str(path),
                                      "size": path.stat().st_size}))
        return path

    def _channel(self, task_id: str, index: int, channel: int, path: Path,
                 pick: int | None, attempt: int, opts: OfflineOptions, profile,
                 lost: threading.Event) -> tuple[list[dict], float]:
        done = self.repo.chunks(task_id, index, channel)
        sentences: list[dict] = [s for c in done for s in c.sentences]
        offset = done[-1].end_s if done else 0.0
        seq = done[-1].seq + 1 if done else 0
        if done:
            log.info("task %s file %d channel %d: resuming at %.1f s after %d chunks", task_id,
                     index, channel, offset, len(done))
        state = {"seq": seq, "from": offset, "pending": [], "samples": 0, "reported": offset}
        self.repo.set_progress(task_id, self.worker_id, offset)  # a new file starts from its own 0
        cap = self.settings.max_async_seconds
        # Resume on the file's VAD frame grid and with the text before the resume point as the
        # decoder's context, so the rest decodes exactly as in an uninterrupted run.
        resume = int(round(offset * SR))
        lead = resume % FRAME_SAMPLES
        lead += min(resume - lead, VAD_WARMUP_FRAMES * FRAME_SAMPLES)
        opts = replace(opts, skip_samples=lead,
                       previous_text=context_of(s["text"] for s in sentences))
        offset = (resume - lead) / SR

        def audio() -> Iterator[np.ndarray]:
            skip = resume - lead
            for block in iter_file_chunks(path, DECODE_BLOCK_S, channel=pick):
                if skip:
                    if block.size <= skip:
                        skip -= block.size
                        continue
                    block, skip = block[skip:], 0
                state["samples"] += block.size
                if offset + state["samples"] / SR > cap + 1:
                    raise FileError(TOO_LONG, f"the audio is longer than {cap:.0f} s")
                yield block

        def save(until: float) -> None:
            chunk = TaskChunk(task_id=task_id, file_index=index, channel=channel,
                              seq=state["seq"], start_s=state["from"], end_s=until,
                              attempt=attempt, worker=self.worker_id,
                              sentences=state["pending"])
            self.repo.save_chunk(self.worker_id, chunk, until)
            sentences.extend(state["pending"])
            state["seq"] += 1
            state["from"], state["pending"] = until, []

        def checkpoint(pos: float) -> None:
            if lost.is_set():
                raise LeaseLost(task_id)
            if self.stopping.is_set():
                raise _Stopping()
            until = offset + pos
            if until - state["from"] >= self.settings.checkpoint_s:
                save(until)
            elif until - state["reported"] >= PROGRESS_S:
                self.repo.set_progress(task_id, self.worker_id, until)
                state["reported"] = until

        for s in self.engine.transcribe_stream(profile, audio(), opts, checkpoint=checkpoint,
                                               priority=Priority.FILE):
            state["pending"].append(results.stored_sentence(s, offset))
        end = offset + state["samples"] / SR
        if state["pending"] or end > state["from"]:
            save(max(end, state["from"]))
        return sentences, end

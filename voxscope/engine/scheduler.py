"""One inference scheduler shared by every stream and job.

Sessions never run the model themselves: they submit decode requests here and await a future. A
worker thread (CTranslate2 releases the GIL, so the event loop keeps serving sockets) forms
batches across sessions:

- work classes in strict order: realtime finals, realtime previews, sync requests, file-task
  windows (`Priority`); a batch never mixes classes, each class is served oldest first;
- partial previews are coalesced per stream: a newer request for the same stream replaces the
  queued one, so a slow machine shows fewer previews instead of falling behind;
- a file window in flight cannot be pre-empted, so while realtime work is about (seen within
  `realtime_hold_s`) file windows go one per batch: a realtime request waits at most one window;
  and while a stream is mid-sentence (a realtime submit within `realtime_idle_s`) a file window
  waits for that quiet moment, for at most `file_max_defer_s`, so file work still progresses;
- a batch holds requests of one window shape (see WhisperBackend), up to `max_batch`, collected for
  at most `max_wait_s` after the first one arrives;
- with a file lane (`file_lane`: a factory of a second backend, `file_lane_threads` in settings),
  while realtime work is about (`realtime_hold_s`) file windows never go to the model realtime work
  uses: a second thread decodes them on their own CTranslate2 replica at a lower CPU priority
  (`file_lane_nice`), so a realtime request never waits for a file window and the file lane gets
  the CPU the realtime lane leaves idle. With no realtime work about, file windows go to the main
  model in batches as without a lane (all its threads, normal priority: batched decoding is what
  file throughput gets from it; a stream that starts then waits for that batch); the lane's
  replica is only loaded when file and realtime work first meet. The lane takes
  `file_lane_batch` windows per decode (1: a batch of 4 beam-5 windows raised peak RSS ~110 MB,
  about what the replica's own weights cost). A replica that has had no file window to decode for
  `file_lane_idle_s` is dropped (and the heaps trimmed: ~125 MB back) and built again when file and
  realtime work next meet; so is one whose file windows became the main model's (realtime work
  gone), at once: held, it would keep the main model's second thread idle.
- with a backend of several CTranslate2 replicas (`backend.workers`, setting `model_workers`: the
  replicas of one model object share its weights; quiet machine: +54-60 MB peak RSS for a file task),
  a second thread decodes file windows and sync requests beside the main lane while no realtime
  work is about, one per decode on each thread, so two windows decode at once (a beam-search decode does
  not keep 2 intra-op threads busy); with `file_lane_shared` that thread is also the file lane while
  realtime work is about (no separate replica: one file window at a time, the other replica stays
  free for realtime work). Realtime work goes to the main lane, except what
  `second_realtime` lets the idle second thread take: a short-window final's full-window recheck
  (`any_lane`, default), or any realtime final ("finals"), so it does not queue behind the main
  lane's finals while the second replica idles (overload trace, session 8: rechecks were 7 of the
  10 slowest finals at 8 streams).
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from voxscope import allocator
from voxscope.engine.load import SPECULATE_MAX_FINAL_SHARE, LoadMeter
from voxscope.engine.streaming import trace
from voxscope.engine.types import DecodeOptions, Priority, Transcript
from voxscope.engine.whisper_backend import WhisperBackend

log = logging.getLogger(__name__)


class SchedulerClosed(RuntimeError):
    pass


@dataclass(eq=False)  # identity semantics: requests hold arrays
class _Request:
    audio: np.ndarray
    options: DecodeOptions
    priority: Priority
    key: object | None
    future: Future = field(default_factory=Future)
    submitted: float = field(default_factory=time.monotonic)
    seq: int = 0
    first: bool = False  # a sentence's first preview
    any_lane: bool = False  # a realtime final the idle second thread may take (a recheck)


@dataclass
class SchedulerStats:
    decoded: int = 0
    batches: int = 0
    superseded: int = 0
    busy_seconds: float = 0.0
    queue_wait_seconds_total: float = 0.0
    max_queue_wait_seconds: float = 0.0
    last_batch_size: int = 0
    final_latency_ema_s: float = 1.0  # submit -> result of final-priority decodes, smoothed
    partial_latency_ema_s: float = 0.3  # the same for previews
    served_by_priority: dict[str, int] = field(default_factory=dict)  # requests decoded per class


class InferenceScheduler:
    def __init__(self, backend: WhisperBackend, *, max_batch: int = 4,
                 max_wait_s: float = 0.005, realtime_hold_s: float = 5.0,
                 realtime_idle_s: float = 1.5, file_max_defer_s: float = 6.0,
                 service_log: int = 512, load_window_s: float = 15.0,
                 first_preview_ahead: bool = False,
                 file_lane: Callable[[], WhisperBackend] | None = None,
                 file_lane_nice: int = 10, file_lane_batch: int = 1,
                 file_lane_idle_s: float = 60.0, file_lane_shared: bool = False) -> None:
        self.backend = backend
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max_wait_s
        self.realtime_hold_s = realtime_hold_s
        self.realtime_idle_s = realtime_idle_s
        self.file_max_defer_s = file_max_defer_s
        self.first_preview_ahead = first_preview_ahead  # first previews before finals
        # While realtime finals take at least this share of model time, previews go one per batch
        # (the hub sets it from `speculate_max_final_share`; >= 1: never).
        self.busy_final_share = SPECULATE_MAX_FINAL_SHARE
        # Realtime finals the idle second thread takes (setting `second_replica_realtime`):
        # "rechecks" (those submitted `any_lane`), "finals" (any), "none" (the main lane only).
        self.second_realtime = "rechecks"
        self.stats = SchedulerStats()
        self.load = LoadMeter(load_window_s)  # measured load, for admission of new streams
        self._finals: deque[_Request] = deque()
        self._partials: OrderedDict[object, _Request] = OrderedDict()
        # Below the realtime classes: sync requests, then file windows (served in this order).
        self._lower: dict[Priority, deque[_Request]] = {Priority.SYNC: deque(),
                                                        Priority.FILE: deque()}
        self._last_realtime = float("-inf")  # monotonic time of the last realtime submit
        # (submit seq, priority) per request in the order decodes started; bounded, for tests
        # and debugging of the service order.
        self._served: deque[tuple[int, Priority]] = deque(maxlen=service_log)
        self._cond = threading.Condition()
        self._closed = False
        self._seq = itertools.count()
        # (audio seconds, decode seconds, [(priority, queue wait)]) per decoded batch (metrics)
        self.on_decoded: Callable[[float, float, list[tuple[str, float]]], None] | None = None
        self.load.oldest_final = self._oldest_final
        # The file lane: its backend is built in its own thread on the first file window (a server
        # without file tasks pays no memory for it), after that thread lowered its CPU priority.
        self._file_lane = file_lane
        self.file_lane_nice = file_lane_nice
        self.file_lane_batch = max(1, file_lane_batch)
        self.file_lane_idle_s = file_lane_idle_s  # <= 0: the replica is kept once built
        self.file_lane_loads = 0  # replicas built (a dropped one is built again when needed)
        self._lane_active = float("-inf")  # monotonic time the lane last took file windows
        self._main_files_at = float("-inf")  # ... and the main model (either of its threads)
        self.file_backend: WhisperBackend | None = None
        self._file_thread: threading.Thread | None = None
        # A second thread on the main backend's second replica (see the module docstring).
        self.parallel = getattr(backend, "workers", 1) > 1
        self._shared_lane = file_lane_shared and self.parallel and file_lane is None
        self._helper_thread: threading.Thread | None = None
        self._thread = threading.Thread(target=self._run, name="voxscope-inference", daemon=True)
        self._thread.start()
        if self.parallel:
            self._helper_thread = threading.Thread(target=self._work, daemon=True,
                                                   args=(self._take_helper_batch, backend),
                                                   name="voxscope-inference-2")
            self._helper_thread.start()
        if file_lane is not None:
            self._file_thread = threading.Thread(target=self._run_file_lane,
                                                 name="voxscope-inference-file", daemon=True)
            self._file_thread.start()

    # -- API ------------------------------------------------------------------------------------
    def submit(self, audio: np.ndarray, options: DecodeOptions,
               priority: Priority = Priority.FINAL, key: object | None = None,
               first: bool = False, any_lane: bool = False) -> Future:
        """Queue a decode; the future resolves to a Transcript, or None if superseded.

        `first` marks a sentence's first preview: it goes ahead of other previews (and, with
        `first_preview_ahead`, of realtime finals), since the delay until a speaker sees anything at
        all matters most. `any_lane` marks a realtime final the idle second thread may take (a
        recheck: see `second_realtime`).
        """
        req = _Request(audio, options, priority, key, seq=next(self._seq),
                       first=first and priority == Priority.PARTIAL and self.first_preview_ahead,
                       any_lane=any_lane and priority == Priority.FINAL)
        with self._cond:
            if self._closed:
                raise SchedulerClosed("the inference scheduler is shut down")
            if priority <= Priority.PARTIAL:
                self._last_realtime = req.submitted
            if priority in self._lower:
                self._lower[priority].append(req)
            elif priority == Priority.PARTIAL and key is not None:
                old = self._partials.pop(key, None)
                if old is not None:
                    self.stats.superseded += 1
                    old.future.set_result(None)
                self._partials[key] = req
                if first:
                    self._partials.move_to_end(key, last=False)
            else:
                self._finals.append(req)
                # A cancelled final (a speculative one speech resumed over) leaves the queue at
                # once, not when its turn comes: else it counts as the oldest waiting final
                # (admission, LoadMeter.final_wait) and takes a batch slot until then.
                req.future.add_done_callback(lambda f, r=req: self._drop_cancelled(r))
            self._cond.notify_all()  # two lanes may wait: wake the one this work is for
        # The caller's own trace line follows this one (same thread): it names the sentence.
        trace.event(0, "submit", seq=req.seq, priority=priority.name.lower())
        return req.future

    def _drop_cancelled(self, req: _Request) -> None:
        if not req.future.cancelled():
            return  # decoded (or failed): it left the queue when taken
        with self._cond:
            if req in self._finals:  # not if a lane took it meanwhile: _work skips it then
                self._finals.remove(req)
        trace.event(0, "drop_cancelled", seq=req.seq)

    def drop_partials(self, key: object) -> None:
        """Forget a stream's queued preview (the stream ended or its sentence closed)."""
        with self._cond:
            old = self._partials.pop(key, None)
        if old is not None:
            old.future.set_result(None)

    def promote(self, key: object) -> None:
        """Serve a stream's queued preview with final priority (someone now waits for it)."""
        with self._cond:
            req = self._partials.pop(key, None)
            if req is not None:
                req.priority = Priority.FINAL
                self._finals.append(req)
                self._cond.notify_all()

    @property
    def queue_depth(self) -> int:
        with self._cond:
            return self._depth()

    def _depth(self) -> int:
        return len(self._finals) + len(self._partials) + sum(map(len, self._lower.values()))

    def _lane_has_files(self) -> bool:
        """Whether file windows are the file lane's now (it exists and realtime work is about)."""
        return ((self._file_lane is not None or self._shared_lane)
                and time.monotonic() - self._last_realtime < self.realtime_hold_s)

    def _lane_work(self) -> bool:
        """Whether the file lane has windows to decode now."""
        return bool(self._lower[Priority.FILE]) and self._lane_has_files()

    def _main_depth(self) -> int:
        """Requests the main (realtime) lane serves now: all but file windows while they are the
        file lane's."""
        if not self._lane_has_files():
            return self._depth()
        return self._depth() - len(self._lower[Priority.FILE])

    def _main_wait_s(self) -> float | None:
        """How long the idle main lane may sleep: until file windows left to the lane become its
        own (realtime work no longer about), else until notified."""
        if (self._file_lane is None and not self._shared_lane) or not self._lower[Priority.FILE]:
            return None
        return max(0.01, self._last_realtime + self.realtime_hold_s - time.monotonic())

    def _oldest_final(self) -> float | None:
        with self._cond:
            return self._finals[0].submitted if self._finals else None

    def service_log(self) -> list[tuple[int, Priority]]:
        """(submit sequence number, priority) of recent requests, in the order they were decoded.

        Sequence numbers grow with each submit: a smaller one was queued earlier."""
        with self._cond:
            return list(self._served)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            pending = list(self._finals) + list(self._partials.values())
            for q in self._lower.values():
                pending.extend(q)
                q.clear()
            self._finals.clear()
            self._partials.clear()
            self._cond.notify_all()
        for req in pending:
            if not req.future.done():
                req.future.set_exception(SchedulerClosed("server shutting down"))
        self._thread.join(timeout=30)
        if self._file_thread is not None:
            self._file_thread.join(timeout=30)
        if self._helper_thread is not None:
            self._helper_thread.join(timeout=30)

    # -- worker ---------------------------------------------------------------------------------
    def _take_batch(self) -> list[_Request] | None:
        with self._cond:
            while not self._closed and not self._main_depth():
                self._cond.wait(self._main_wait_s())
            if self._closed:
                return None
            # Give concurrent sessions a few ms to join the batch.
            if self.max_batch > 1 and self.max_wait_s > 0:
                deadline = time.monotonic() + self.max_wait_s
                while self._main_depth() < self.max_batch and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            if not self._main_depth():
                return []  # the second thread took it meanwhile: look again
            # The highest class with work; lower classes wait (strict priority, no mixing) -
            # except a sentence's first preview: one short greedy window, it goes ahead of finals
            # (the wait until a speaker sees anything at all matters most; finals lose ~0.1 s).
            firsts = self._finals and any(r.first for r in self._partials.values())
            queue = self._finals if self._finals and not firsts else None
            limit = self.max_batch
            if queue is None and not self._partials:
                lane = self._lane_has_files()
                queue = next(q for p, q in self._lower.items()
                             if q and (p != Priority.FILE or not lane))
                now = time.monotonic()
                if (queue is self._lower[Priority.FILE]
                        and now - self._last_realtime < self.realtime_hold_s):
                    # A file batch cannot be pre-empted: while streams are active, one window at
                    # a time, so a realtime request arriving now waits for one window, not four.
                    limit = 1
                    # Mid-sentence (previews come every ~0.6 s) a window started now would
                    # hold the stream's next preview/final for a whole decode: wait for a pause.
                    until = self._file_window_from()
                    if now < until:
                        self._cond.wait(until - now)
                        return []  # look again: realtime work may have come meanwhile
            if (self.parallel and queue is not None and queue is not self._finals
                    and time.monotonic() - self._last_realtime >= self.realtime_hold_s):
                limit = 1  # the second thread takes the next one: two decode at once
            first = queue[0] if queue is not None else next(iter(self._partials.values()))
            shape = (first.options.full_window, first.options.beam_size)
            batch: list[_Request] = []
            if queue is not None:
                for req in list(queue):
                    if len(batch) >= limit:
                        break
                    if (req.options.full_window, req.options.beam_size) == shape:
                        batch.append(req)
                for req in batch:
                    queue.remove(req)
            else:
                # Previews degrade first: while finals keep the model busy, one per batch, so a
                # final queued meanwhile waits for one preview, not a batch of them (traced 4-stream
                # overload: finals waited up to 5 s behind a preview batch in flight).
                busy = self.load.finals_busy(self.busy_final_share)
                for key, req in list(self._partials.items()):
                    if len(batch) >= (1 if busy else self.max_batch):
                        break
                    if firsts and not req.first:
                        continue  # finals wait: only first previews go ahead of them
                    if (req.options.full_window, req.options.beam_size) == shape:
                        batch.append(req)
                        del self._partials[key]
            return batch

    def _take_file_batch(self) -> list[_Request] | None:
        """The file lane's next batch: file windows of one shape, oldest first, up to
        `file_lane_batch` (the lane runs beside realtime work, so no holding back for it)."""
        with self._cond:
            queue = self._lower[Priority.FILE]
            # Realtime work going quiet hands the windows to the main lane; a realtime submit
            # (notify_all) hands them back. A lane idle for file_lane_idle_s gives its replica
            # back (None: the caller drops it).
            while not self._closed and not self._lane_work():
                if self.file_lane_idle_s <= 0:
                    self._cond.wait()
                    continue
                if queue or self._main_files_at > self._lane_active:
                    # Realtime work is gone and file windows wait or went to the main model: they
                    # are its windows now, and a held replica would keep them one at a time there
                    # (no second thread, no bulk threshold: memory). Give it back now, not
                    # file_lane_idle_s later.
                    return None
                idle = self._lane_active + self.file_lane_idle_s - time.monotonic()
                if idle <= 0:
                    return None
                self._cond.wait(idle)
            if self._closed:
                return None
            self._lane_active = time.monotonic()
            shape = (queue[0].options.full_window, queue[0].options.beam_size)
            batch = [r for r in queue
                     if (r.options.full_window, r.options.beam_size) == shape][: self.file_lane_batch]
            for req in batch:
                queue.remove(req)
            return batch

    def _helper_queue(self) -> deque[_Request] | None:
        """The queue the second thread may take from now: sync requests, then file windows, while
        no realtime work is about (and no separate lane replica is held: memory); file windows
        while it is, as the shared file lane."""
        now = time.monotonic()
        if now - self._last_realtime < self.realtime_hold_s:
            # The shared lane runs at the realtime lane's CPU priority: a file window waits for a
            # pause in realtime work (as on one model), at most file_max_defer_s.
            files = self._lower[Priority.FILE]
            return files if (self._shared_lane and self._lane_work()
                             and now >= self._file_window_from()) else None
        if self.file_backend is not None:
            return None
        return next((q for q in self._lower.values() if q), None)

    def _file_window_from(self) -> float:
        """When the oldest file window may start while realtime work is about (on the main lane,
        or the shared lane): at a pause in it, at most `file_max_defer_s` after it was queued."""
        return min(self._last_realtime + self.realtime_idle_s,
                   self._lower[Priority.FILE][0].submitted + self.file_max_defer_s)

    def _helper_wait_s(self) -> float | None:
        """How long the idle second thread may sleep: until realtime work is no longer about (or,
        as the shared lane, a pause in it), if work it may not take yet waits for that."""
        if not any(self._lower.values()):
            return None
        left = self._last_realtime + self.realtime_hold_s - time.monotonic()
        if self._shared_lane and self._lower[Priority.FILE] and left > 0:
            return max(0.01, min(left, self._file_window_from() - time.monotonic()))
        return left if left > 0.01 else 1.0  # a lane replica is held: look again later

    def _helper_final(self) -> _Request | None:
        """A queued realtime final the second thread may take (see `second_realtime`): it is idle
        when it asks, so the final need not wait for the main lane's decode in flight."""
        mode = self.second_realtime
        if mode == "none":
            return None
        return next((r for r in self._finals if mode == "finals" or r.any_lane), None)

    def _take_helper_batch(self) -> list[_Request] | None:
        """The second thread's next decode: one request (a realtime final it may take, else see
        _helper_queue)."""
        with self._cond:
            while not self._closed:
                if (req := self._helper_final()) is not None:
                    self._finals.remove(req)
                    return [req]
                if (queue := self._helper_queue()) is not None:
                    return [queue.popleft()]
                self._cond.wait(self._helper_wait_s())
            return None

    def _run_file_lane(self) -> None:
        try:
            # Linux: a thread's nice value is inherited by the threads it creates, so CTranslate2's
            # worker and OpenMP threads of the replica built below run at this lower priority too.
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.file_lane_nice)
        except (OSError, AttributeError):
            log.warning("file lane: could not lower its CPU priority on this system")
        while self._lane_once():
            pass

    def _lane_once(self) -> bool:
        """Build the replica when file work meets realtime work, decode on it until the lane has
        been idle for file_lane_idle_s, then drop it. False: the scheduler closed or no lane."""
        assert self._file_lane is not None
        with self._cond:  # build nothing until file work meets realtime work
            while not self._closed and not self._lane_work():
                self._cond.wait()
            if self._closed:
                return False
        try:
            backend = self._file_lane()
        except Exception:  # no lane after all: the main lane serves file windows as before
            log.exception("file lane: loading its model replica failed; file work shares the model")
            with self._cond:
                self._file_lane = None
                self._cond.notify_all()
            return False
        allocator.trim()  # the load's float16 read buffers (~15 MB left in the heaps)
        with self._cond:
            self.file_backend = backend
            self.file_lane_loads += 1
            self._lane_active = time.monotonic()
        self._work(self._take_file_batch, backend)
        with self._cond:
            self.file_backend = None
            closed = self._closed
        if not closed:
            log.info("file lane: its model replica is released (no file windows for it)")
            del backend
            gc.collect()  # the replica's native memory goes with its last reference
            allocator.trim()
            with self._cond:
                self._cond.notify_all()  # the second thread may take file windows now
        return not closed

    def _run(self) -> None:
        self._work(self._take_batch, self.backend)

    def _work(self, take: Callable[[], list[_Request] | None], backend: WhisperBackend) -> None:
        """One lane's loop: take a batch, decode it on `backend`, resolve its futures."""
        while True:
            try:
                batch = take()
            except Exception:  # never let a worker die: every session depends on it
                log.exception("scheduler failed to form a batch")
                continue
            if batch is None:
                return
            taken = batch
            batch = [r for r in batch if r.future.set_running_or_notify_cancel()]
            if len(batch) < len(taken):
                trace.event(0, "skip_cancelled", seqs=[r.seq for r in taken if r not in batch])
            if not batch:
                continue
            start = time.monotonic()
            with self._cond:  # two lanes update the stats: under the lock, so no count is lost
                self._served.extend((r.seq, r.priority) for r in batch)
                if (take != self._take_file_batch and batch[0].priority == Priority.FILE
                        and self.file_backend is not None):
                    self._main_files_at = start
                    self._cond.notify_all()  # a held lane replica is not needed now
                for req in batch:
                    name = req.priority.name.lower()
                    self.stats.served_by_priority[name] = (
                        self.stats.served_by_priority.get(name, 0) + 1)
                    wait = start - req.submitted
                    self.stats.queue_wait_seconds_total += wait
                    self.stats.max_queue_wait_seconds = max(self.stats.max_queue_wait_seconds, wait)
            if backend is self.backend:
                # File windows with no realtime work about: the allocator's throughput settings
                # (page faults were ~35 % of a file task's CPU); realtime work: flat-RSS ones.
                # Not while the lane's replica is held: memory is high enough then.
                allocator.bulk_decoding(batch[0].priority == Priority.FILE
                                        and start - self._last_realtime >= self.realtime_hold_s
                                        and self.file_backend is None)
            try:
                results: list[Transcript] = backend.decode_batch(
                    [(r.audio, r.options) for r in batch])
            except Exception as exc:  # a bad request must not kill the worker for everyone
                log.exception("decode batch failed")
                for req in batch:
                    req.future.set_exception(exc)
                continue
            finally:
                end = time.monotonic()
                # A batch holds one class (promoted previews count as the finals they became).
                self.load.record(start, end, batch[0].priority,
                                 [start - r.submitted for r in batch if r.priority == Priority.FINAL])
                with self._cond:
                    self.stats.busy_seconds += end - start  # summed over lanes
                    self.stats.batches += 1
                    self.stats.last_batch_size = len(batch)
            with self._cond:
                self.stats.decoded += len(batch)
            done = time.monotonic()
            trace.event(0, "batch", start=round(start, 4), decode_s=round(done - start, 3),
                        priority=batch[0].priority.name.lower(), size=len(batch),
                        full=batch[0].options.full_window, file_lane=backend is not self.backend,
                        seqs=[r.seq for r in batch])
            self._report(batch, start, done)
            for req, res in zip(batch, results, strict=True):
                latency = done - req.submitted
                # Only realtime work feeds the EMAs the recognizer paces itself by: a file
                # window's long wait must not make previews back off.
                if req.priority == Priority.FINAL:
                    self.stats.final_latency_ema_s = 0.8 * self.stats.final_latency_ema_s + 0.2 * latency
                elif req.priority == Priority.PARTIAL:
                    self.stats.partial_latency_ema_s = (0.8 * self.stats.partial_latency_ema_s
                                                        + 0.2 * latency)
                req.future.set_result(res)

    def _report(self, batch: list[_Request], start: float, done: float) -> None:
        if self.on_decoded is None:
            return
        try:
            audio_s = sum(r.audio.size for r in batch) / 16000
            self.on_decoded(audio_s, done - start,
                            [(r.priority.name.lower(), start - r.submitted) for r in batch])
        except Exception:  # metrics must never stop the worker every session depends on
            log.exception("reporting a decode batch failed")

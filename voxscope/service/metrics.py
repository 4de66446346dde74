"""Prometheus metrics, one registry per app so tests and several apps in a process don't clash.

What operators watch (README, "Metrics"): result delays per model, decode real-time factor,
scheduler queue depth and wait, live sessions per protocol and model, file tasks by state,
refusals by wire and code, key-auth failures. Every label set is bounded: models come from the
configured profiles, codes from voxscope's own error codes; never a task id or a key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from voxscope.engine.observer import EngineObserver
from voxscope.errors import INVALID_API_KEY

log = logging.getLogger(__name__)

# Seconds: a first preview within ~0.5 s and a final within ~1.5 s of the pause are the targets.
DELAY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)  # decode time / audio time
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics(EngineObserver):
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("voxscope_ws_connections", "Open WebSocket connections",
                                 registry=r)
        self.active_tasks = Gauge("voxscope_active_tasks", "Running realtime tasks", registry=r)
        self.tasks = Counter("voxscope_tasks", "Realtime tasks by outcome", ["outcome"],
                             registry=r)
        self.results = Counter("voxscope_results", "Results sent, by kind", ["kind"], registry=r)
        self.audio_seconds = Counter("voxscope_audio_seconds", "Seconds of audio received",
                                     registry=r)
        self.queue_depth = Gauge("voxscope_inference_queue_depth",
                                 "Decode requests waiting in the scheduler", registry=r)
        self.busy_seconds = Gauge("voxscope_inference_busy_seconds",
                                  "Seconds the inference worker spent decoding", registry=r)
        self.queue_wait = Gauge("voxscope_inference_queue_wait_seconds_max",
                                "Longest time a decode request waited", registry=r)
        # Bounded by voxscope.allocator; growing with threads means fragmentation (RSS creep).
        self.malloc_arenas = Gauge("voxscope_malloc_arenas", "glibc malloc arenas of the process",
                                   registry=r)
        # -- for operators (issue 10, section 6) --
        self.sessions = Gauge("voxscope_sessions", "Live streaming sessions (WebSocket tasks)",
                              ["protocol", "model"], registry=r)
        self.first_partial_delay = Histogram(
            "voxscope_first_partial_delay_seconds",
            "From detected speech onset to the sentence's first partial result", ["model"],
            buckets=DELAY_BUCKETS, registry=r)
        self.final_delay = Histogram(
            "voxscope_final_delay_seconds",
            "From the sentence's last speech audio received to its final result", ["model"],
            buckets=DELAY_BUCKETS, registry=r)
        # Speculative finals (asked at a pause before it is known to end the sentence): a miss is
        # final-priority work thrown away when speech resumed, which admission must pay for.
        self.speculative_finals = Counter(
            "voxscope_speculative_finals", "Speculative realtime final decodes by outcome (hit: "
            "the sentence ended there; miss: speech resumed, the decode was stale)",
            ["model", "outcome"], registry=r)
        self.final_rechecks = Counter(
            "voxscope_final_rechecks", "Short-window realtime finals that looked weak and were "
            "decoded again in the full 30 s window (final_window: short)", ["model"], registry=r)
        self.early_rechecks = Counter(
            "voxscope_early_rechecks", "Full-window rechecks asked for beside the short final "
            "(early_recheck) by outcome (used: the short final disagreed; dropped: not needed)",
            ["model", "outcome"], registry=r)
        self.decode_rtf = Histogram(
            "voxscope_decode_rtf", "Decode time over audio time, per scheduler batch", ["model"],
            buckets=RTF_BUCKETS, registry=r)
        self.scheduler_wait = Histogram(
            "voxscope_scheduler_queue_wait_seconds",
            "Time a decode request waited in the scheduler queue", ["model", "priority"],
            buckets=WAIT_BUCKETS, registry=r)
        self.refusals = Counter(
            "voxscope_refusals", "Errors answered to clients (refused requests and sessions "
            "ended with an error), by wire and code", ["wire", "code"], registry=r)
        self.auth_failures = Counter("voxscope_auth_failures",
                                     "Requests refused for a missing or wrong API key", ["wire"],
                                     registry=r)
        self._scrape = _ScrapeTime()
        r.register(self._scrape)

    # -- engine timings (EngineObserver) ----------------------------------------------------------
    def decoded(self, model: str, audio_s: float, decode_s: float,
                waits: list[tuple[str, float]]) -> None:
        if audio_s > 0:
            self.decode_rtf.labels(model).observe(decode_s / audio_s)
        for priority, wait in waits:
            self.scheduler_wait.labels(model, priority).observe(max(wait, 0.0))

    def timing(self, model: str, kind: str, seconds: float) -> None:
        if kind == "final_recheck":
            self.final_rechecks.labels(model).inc()
            return
        if kind in ("early_recheck_used", "early_recheck_dropped"):
            self.early_rechecks.labels(model, kind.rsplit("_", 1)[1]).inc()
            return
        if kind in ("speculative_hit", "speculative_miss"):
            self.speculative_finals.labels(model, kind.split("_")[1]).inc()
            return
        hist = self.first_partial_delay if kind == "first_partial" else self.final_delay
        hist.labels(model).observe(max(seconds, 0.0))

    # -- protocol events ----------------------------------------------------------------------------
    def refused(self, wire: str, code: str | None) -> None:
        """An error answered on `wire` (rest, openai, inference, realtime); a wrong or missing
        key also counts as an auth failure."""
        code = code or "unknown"
        self.refusals.labels(wire, code[:64]).inc()
        if code == INVALID_API_KEY:
            self.auth_failures.labels(wire).inc()

    def session_started(self, protocol: str, model: str) -> None:
        self.active_tasks.inc()
        self.sessions.labels(protocol, model).inc()

    def session_ended(self, protocol: str, model: str) -> None:
        self.active_tasks.dec()
        self.sessions.labels(protocol, model).dec()

    # -- read at scrape time ------------------------------------------------------------------------
    def watch(self, queue_depths: Callable[[], Mapping[str, int]],
              task_counts: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        """Sources read when /metrics is scraped: queue depth per model, file tasks by
        (state, model). Scrapes run off the event loop (the task count is a DB query)."""
        self._scrape.queue_depths = queue_depths
        self._scrape.task_counts = task_counts


def wire_of(scope_type: str, path: str) -> str:
    """The wire a request speaks, from its ASGI scope type and path (for refusal labels)."""
    if scope_type == "websocket":
        return "realtime" if "/realtime" in path else "inference"
    return "openai" if path.startswith("/v1/") else "rest"


class _ScrapeTime(Collector):
    def __init__(self) -> None:
        self.queue_depths: Callable[[], Mapping[str, int]] = dict
        self.task_counts: Callable[[], Mapping[tuple[str, str], int]] = dict

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._families({}, {})

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            depths = self.queue_depths()
        except Exception:  # a scrape must still answer: report what can be read
            log.warning("reading scheduler queue depths failed", exc_info=True)
            depths = {}
        try:
            counts = self.task_counts()
        except Exception:
            log.warning("counting file tasks by state failed", exc_info=True)
            counts = {}
        return self._families(depths, counts)

    @staticmethod
    def _families(depths: Mapping[str, int],
                  counts: Mapping[tuple[str, str], int]) -> list[GaugeMetricFamily]:
        depth = GaugeMetricFamily("voxscope_scheduler_queue_depth",
                                  "Decode requests waiting in the scheduler, per model",
                                  labels=["model"])
        for model, n in sorted(depths.items()):
            depth.add_metric([model], n)
        tasks = GaugeMetricFamily("voxscope_file_tasks",
                                  "File transcription tasks in the database, by state and model "
                                  "(shared by every server on the same database)",
                                  labels=["state", "model"])
        for (state, model), n in sorted(counts.items()):
            tasks.add_metric([state, model], n)
        return [depth, tasks]

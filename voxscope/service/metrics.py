"""Prometheus metrics, one registry per app so tests and several apps in a process don't clash."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
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

"""The task queue (Huey): SQLite in the data folder by default, Redis to share between machines.

The queue only carries task ids; what a task is and how far it got lives in the database, so a
lost or duplicated message is harmless (claiming a task is atomic, see repository.claim).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

log = logging.getLogger(__name__)

TASK_NAME = "voxscope.transcribe"


def make_huey(target: str) -> Huey:
    """`sqlite:///path/queue.db` or `redis://host:port/db`."""
    if target.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("voxscope", url=target, results=False)
    if target.startswith("sqlite:///"):
        path = Path(target.removeprefix("sqlite:///"))  # sqlite:////abs/path -> /abs/path
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey("voxscope", filename=str(path), results=False)
    raise ValueError(f"unsupported queue_url {target!r}: use redis://... or sqlite:///path")


class TaskQueue:
    def __init__(self, target: str, run: Callable[[str], None] | None = None) -> None:
        self.huey = make_huey(target)
        self._run = run
        # Every process registers the task; only processes with workers execute it.
        self._task = self.huey.task(name=TASK_NAME)(self._execute)
        self._consumer: Consumer | None = None

    def _execute(self, task_id: str) -> None:
        if self._run is None:  # pragma: no cover - an API-only process runs no consumer
            raise RuntimeError("this process runs no task workers")
        self._run(task_id)

    def enqueue(self, task_id: str) -> None:
        self._task(task_id)

    def pending(self) -> int:
        return self.huey.pending_count()

    def consumer(self, workers: int) -> Consumer:
        return self.huey.create_consumer(workers=workers, worker_type="thread", periodic=False,
                                         initial_delay=0.1, max_delay=1.0, backoff=1.15)

    def start_in_process(self, workers: int) -> None:
        """Consume from threads of this process (the embedded `serve`)."""
        consumer = self.consumer(workers)
        # The web server owns the process's signals: don't let Huey take them over.
        consumer._set_signal_handlers = lambda: None  # type: ignore[method-assign]
        consumer.start()
        self._consumer = consumer

    def stop(self, wait_s: float = 15.0) -> None:
        """Stop taking tasks; wait up to wait_s for running ones to return (they are told to
        give themselves back by the runner's stopping flag)."""
        if self._consumer is not None:
            self._consumer.shutdown_timeout = wait_s
            self._consumer.stop(graceful=True)
            self._consumer = None

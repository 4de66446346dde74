"""Task workers of one process: the queue consumer, the runner, and the lease reaper."""

from __future__ import annotations

import logging
import os
import socket
import threading

from voxscope.config import Settings
from voxscope.engine.hub import Engine
from voxscope.jobs.queue import TaskQueue
from voxscope.jobs.repository import TaskRepository
from voxscope.jobs.runner import TaskRunner
from voxscope.storage.database import Database

log = logging.getLogger(__name__)


class TaskService:
    """What the API needs (submit to the queue, read state) and, with workers, what runs tasks."""

    def __init__(self, settings: Settings, db: Database, engine: Engine | None = None) -> None:
        self.settings = settings
        self.repo = TaskRepository(db)
        self.runner = TaskRunner(settings, engine, self.repo) if engine is not None else None
        self.queue = TaskQueue(settings.queue_target(),
                               self.runner.run if self.runner is not None else None)
        if self.runner is not None:
            self.runner.requeue = self.queue.enqueue
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()

    def submit(self, owner: str, model: str, form: str, urls: list[str], request: dict) -> str:
        task_id = self.repo.submit(owner, model, form, urls, request)
        self.queue.enqueue(task_id)
        return task_id

    # -- workers --------------------------------------------------------------------------------
    def start_workers(self, count: int) -> None:
        """Consume tasks from `count` threads of this process."""
        assert self.runner is not None, "workers need an engine"
        self._reaper = threading.Thread(target=self._reap, name="task-reaper", daemon=True)
        self._reaper.start()
        self.queue.start_in_process(count)

    def _reap(self) -> None:
        period = max(self.settings.task_lease_s / 3, 0.5)
        while not self._stop.wait(period):
            try:
                for task_id in self.repo.reclaim_expired(_dead_local_worker):
                    log.info("task %s: its worker stopped renewing the lease; requeued", task_id)
                    self.queue.enqueue(task_id)
                # The queue message is a PENDING task's only trace: with the queue empty, a task
                # still PENDING lost its message (e.g. a worker died between taking and claiming
                # it). Requeue it; a duplicate would be harmless (claims are atomic).
                if self.queue.pending() == 0:
                    for task_id in self.repo.pending_ids(older_than_s=period):
                        log.info("task %s: PENDING without a queue message; requeued", task_id)
                        self.queue.enqueue(task_id)
            except Exception:
                log.warning("lease reaper failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self.runner is not None:
            self.runner.stopping.set()  # running tasks give themselves back at the next step
        self.queue.stop()


def _dead_local_worker(worker: str) -> bool:
    """True for a worker id (host:pid:nonce) of this host whose process no longer exists."""
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False

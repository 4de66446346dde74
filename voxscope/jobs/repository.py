"""Task state in the database: submit, claim with a lease, checkpoints, outcome, cancel, list."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from voxscope.storage.database import Database
from voxscope.storage.tables import Task, TaskChunk, TaskFile, utcnow

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED", \
    "CANCELED"
FINISHED = (SUCCEEDED, FAILED, CANCELED)


class LeaseLost(Exception):
    """Another worker took the task over (this one was presumed dead): stop without writing."""


@dataclass
class TaskView:
    task: Task
    files: list[TaskFile]


class TaskRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- API side -------------------------------------------------------------------------------
    def submit(self, owner: str, model: str, form: str, urls: list[str],
               request: dict[str, Any]) -> str:
        task_id = str(uuid.uuid4())
        with self.db.session() as s:
            s.add(Task(id=task_id, model=model, form=form, status=PENDING, request=request,
                       owner=owner))
            s.flush()
            for i, url in enumerate(urls):
                s.add(TaskFile(task_id=task_id, index=i, url=url))
        return task_id

    def view(self, task_id: str, owner: str | None = None) -> TaskView | None:
        with self.db.session() as s:
            task = s.get(Task, task_id)
            if task is None or (owner is not None and task.owner != owner):
                return None
            files = list(s.scalars(select(TaskFile).where(TaskFile.task_id == task_id)
                                   .order_by(TaskFile.index)))
            return TaskView(task, files)

    def file(self, task_id: str, index: int) -> TaskFile | None:
        with self.db.session() as s:
            return s.scalar(select(TaskFile).where(TaskFile.task_id == task_id,
                                                   TaskFile.index == index))

    def cancel(self, task_id: str, owner: str) -> str | None:
        """CANCELED if it was still PENDING; else the status that kept it from being cancelled
        (None: no such task)."""
        with self.db.session() as s:
            task = s.get(Task, task_id)
            if task is None or task.owner != owner:
                return None
            res = s.execute(update(Task).where(Task.id == task_id, Task.status == PENDING)
                            .values(status=CANCELED, ended=utcnow()))
            return CANCELED if res.rowcount else task.status

    def page(self, owner: str, *, status: str | None, model: str | None,
             start: datetime | None, end: datetime | None, page_no: int,
             page_size: int) -> tuple[int, list[TaskView]]:
        cond = [Task.owner == owner]
        if status:
            cond.append(Task.status == status)
        if model:
            cond.append(Task.model == model)
        if start:
            cond.append(Task.submitted >= start)
        if end:
            cond.append(Task.submitted <= end)
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(Task).where(*cond)) or 0
            tasks = list(s.scalars(select(Task).where(*cond).order_by(Task.submitted.desc())
                                   .offset((page_no - 1) * page_size).limit(page_size)))
            files = list(s.scalars(select(TaskFile).where(
                TaskFile.task_id.in_([t.id for t in tasks])).order_by(TaskFile.index)))
        by_task: dict[str, list[TaskFile]] = {}
        for f in files:
            by_task.setdefault(f.task_id, []).append(f)
        return total, [TaskView(t, by_task.get(t.id, [])) for t in tasks]

    # -- worker side ----------------------------------------------------------------------------
    def claim(self, task_id: str, worker: str, lease_s: float) -> int | None:
        """Take the task if it is PENDING (or RUNNING under an expired lease). Atomic, so a task
        runs on one worker at a time however many queue messages name it. Returns the attempt."""
        now = utcnow()
        with self.db.session() as s:
            res = s.execute(update(Task).where(
                Task.id == task_id,
                or_(Task.status == PENDING, and_(Task.status == RUNNING, Task.lease_until < now)),
            ).values(status=RUNNING, worker=worker, lease_until=now + timedelta(seconds=lease_s),
                     attempts=Task.attempts + 1, scheduled=func.coalesce(Task.scheduled, now)))
            if not res.rowcount:
                return None
            return s.get(Task, task_id).attempts  # type: ignore[union-attr]

    def renew(self, task_id: str, worker: str, lease_s: float) -> bool:
        with self.db.session() as s:
            res = s.execute(update(Task).where(Task.id == task_id, Task.worker == worker,
                                               Task.status == RUNNING)
                            .values(lease_until=utcnow() + timedelta(seconds=lease_s)))
            return bool(res.rowcount)

    def _holding(self, s, task_id: str, worker: str) -> Task:
        task = s.get(Task, task_id)
        if task is None or task.worker != worker or task.status != RUNNING:
            raise LeaseLost(task_id)
        return task

    def chunks(self, task_id: str, file_index: int, channel: int) -> list[TaskChunk]:
        with self.db.session() as s:
            return list(s.scalars(select(TaskChunk).where(
                TaskChunk.task_id == task_id, TaskChunk.file_index == file_index,
                TaskChunk.channel == channel).order_by(TaskChunk.seq)))

    def save_chunk(self, worker: str, chunk: TaskChunk, progress_s: float) -> None:
        with self.db.session() as s:
            task = self._holding(s, chunk.task_id, worker)
            s.add(chunk)
            task.progress_s = progress_s

    def set_progress(self, task_id: str, worker: str, progress_s: float) -> None:
        """Where the current file's transcription is (seconds), between checkpoints."""
        with self.db.session() as s:
            self._holding(s, task_id, worker).progress_s = progress_s

    def set_duration(self, task_id: str, worker: str, duration_s: float) -> None:
        with self.db.session() as s:
            self._holding(s, task_id, worker).duration_s = duration_s

    def finish_file(self, task_id: str, worker: str, index: int, *, status: str,
                    result: dict | None = None, duration_s: float = 0.0, code: str | None = None,
                    message: str | None = None) -> None:
        with self.db.session() as s:
            self._holding(s, task_id, worker)
            f = s.scalar(select(TaskFile).where(TaskFile.task_id == task_id,
                                                TaskFile.index == index))
            assert f is not None
            f.status, f.result, f.duration_s, f.code, f.message = (status, result, duration_s,
                                                                   code, message)

    def finish(self, task_id: str, worker: str, status: str, code: str | None = None,
               message: str | None = None, also: Callable | None = None) -> None:
        """End the task; `also(session, task)` runs in the same transaction (its usage record:
        counted exactly when the end is, never for a worker that lost the lease)."""
        with self.db.session() as s:
            task = self._holding(s, task_id, worker)
            task.status, task.code, task.message, task.ended = status, code, message, utcnow()
            task.lease_until = None
            if also is not None:
                also(s, task)

    def release(self, task_id: str, worker: str) -> bool:
        """Give a task back (worker shutting down): PENDING again, to be requeued."""
        with self.db.session() as s:
            res = s.execute(update(Task).where(Task.id == task_id, Task.worker == worker,
                                               Task.status == RUNNING)
                            .values(status=PENDING, worker=None, lease_until=None))
            return bool(res.rowcount)

    def pending_ids(self, older_than_s: float) -> list[str]:
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        with self.db.session() as s:
            return list(s.scalars(select(Task.id).where(Task.status == PENDING,
                                                        Task.submitted < cutoff)
                                  .order_by(Task.submitted)))

    def reclaim_expired(self, dead_local: Callable[[str], bool] | None = None) -> list[str]:
        """Tasks whose worker stopped renewing its lease (it died): PENDING again, to requeue.
        `dead_local` spots workers of this machine that are known dead (their process is gone)
        so a restarted server resumes at once instead of waiting out the lease. The conditional
        update makes one reaper win each task even with many running."""
        now = utcnow()
        with self.db.session() as s:
            rows = s.execute(select(Task.id, Task.worker, Task.lease_until)
                             .where(Task.status == RUNNING)).all()
        won = []
        for task_id, worker, lease_until in rows:
            expired = lease_until is None or lease_until < now
            if not expired and not (dead_local and worker and dead_local(worker)):
                continue
            with self.db.session() as s:
                res = s.execute(update(Task).where(Task.id == task_id, Task.status == RUNNING,
                                                   Task.worker == worker)
                                .values(status=PENDING, worker=None, lease_until=None))
                if res.rowcount:
                    won.append(task_id)
        return won

    # -- metrics --------------------------------------------------------------------------------
    def counts_by_state(self) -> dict[tuple[str, str], int]:
        """How many tasks are in each (status, model): one grouped count over indexed columns."""
        with self.db.session() as s:
            rows = s.execute(select(Task.status, Task.model, func.count())
                             .group_by(Task.status, Task.model)).all()
        return {(status, model): n for status, model, n in rows}

"""Database tables. Times are UTC; JSON columns hold what the wire formats return."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Vocabulary(Base):
    """A hot-word list created through the VocabularyService."""

    __tablename__ = "vocabularies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    target_model: Mapped[str] = mapped_column(String(128))
    words: Mapped[list] = mapped_column(JSON)
    owner: Mapped[str] = mapped_column(String(64), default="", index=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    modified: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Task(Base):
    """An async file-transcription task (one or more files)."""

    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), index=True)
    form: Mapped[str] = mapped_column(String(16))  # "qwen" (one file_url) or "files" (file_urls)
    status: Mapped[str] = mapped_column(String(16), index=True)
    request: Mapped[dict] = mapped_column(JSON)  # input + parameters as submitted
    owner: Mapped[str] = mapped_column(String(64), default="", index=True)
    submitted: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    scheduled: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    ended: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Which worker holds the task and until when; an expired lease means the worker died.
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress_s: Mapped[float] = mapped_column(Float, default=0.0)  # audio seconds done (all files)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    code: Mapped[str | None] = mapped_column(String(128), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


class TaskFile(Base):
    """One input file of a task, with its outcome."""

    __tablename__ = "task_files"
    __table_args__ = (UniqueConstraint("task_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # the transcription document
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    code: Mapped[str | None] = mapped_column(String(128), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


class TaskChunk(Base):
    """A finished stretch of one channel of one file: what a resumed task does not redo."""

    __tablename__ = "task_chunks"
    __table_args__ = (UniqueConstraint("task_id", "file_index", "channel", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    file_index: Mapped[int] = mapped_column(Integer)
    channel: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    attempt: Mapped[int] = mapped_column(Integer)  # the task attempt that produced it
    worker: Mapped[str] = mapped_column(String(128))
    sentences: Mapped[list] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiKey(Base):
    """An API key created with `voxscope keys create`: its hash, never the key, and its limits."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    expires: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    max_sessions: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rps: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_queued_tasks: Mapped[int | None] = mapped_column(Integer, nullable=True)
    daily_audio_hours: Mapped[float | None] = mapped_column(Float, nullable=True)


class ApiToken(Base):
    """A temporary token (`POST /api/v1/tokens`): its hash, whose it is and until when."""

    __tablename__ = "api_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # None: a config key
    expires: Mapped[datetime] = mapped_column(DateTime, index=True)


class UsageDay(Base):
    """Usage metering: what one owner (a key's data owner) did with one model on one UTC day."""

    __tablename__ = "usage"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True, index=True)  # YYYY-MM-DD
    audio_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    tasks: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)

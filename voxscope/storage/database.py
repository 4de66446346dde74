"""One SQLAlchemy engine per process; SQLite by default, any SQLAlchemy URL (PostgreSQL) to share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from voxscope.storage.tables import Base

SCHEMA_LOCK = 0x766F7873  # PostgreSQL advisory lock id held while the schema is created ("voxs")


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        sqlite = url.startswith("sqlite")
        self.engine: Engine = create_engine(
            url, future=True, pool_pre_ping=not sqlite,
            connect_args={"timeout": 30, "check_same_thread": False} if sqlite else {})
        if sqlite:
            # WAL lets the API process read while a worker process writes; the busy timeout makes
            # concurrent writers wait instead of failing.
            @event.listens_for(self.engine, "connect")
            def _pragmas(conn, _record) -> None:  # pragma: no cover - trivial
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Machines starting at once would all see the tables missing and race to create
                # them (UniqueViolation on pg_type): one at a time, the others then find them.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            Base.metadata.create_all(conn)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends normally, rolled back otherwise."""
        with self._sessions() as s, s.begin():
            yield s

    def close(self) -> None:
        self.engine.dispose()

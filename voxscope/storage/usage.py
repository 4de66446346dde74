"""The `usage` table: per owner, model and UTC day counters, added to with one atomic upsert."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from voxscope.storage.database import Database
from voxscope.storage.tables import UsageDay


def today() -> str:
    """The UTC day usage is counted on, as stored (YYYY-MM-DD)."""
    return datetime.now(UTC).date().isoformat()


@dataclass(frozen=True)
class UsageDelta:
    """Counts to add to one (owner, model, day) row."""

    owner: str
    model: str
    day: str  # YYYY-MM-DD, UTC
    audio_seconds: float = 0.0
    requests: int = 0
    tasks: int = 0
    failures: int = 0


COUNTERS = ("audio_seconds", "requests", "tasks", "failures")


class UsageStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._dialect = db.engine.dialect.name

    def add(self, deltas: Iterable[UsageDelta], session: Session | None = None) -> None:
        """Add the deltas in one transaction (`session`'s, when given). An upsert (INSERT ...
        ON CONFLICT DO UPDATE) so servers and workers sharing the database never lose each
        other's counts."""
        rows = [d for d in deltas if any(getattr(d, c) for c in COUNTERS)]
        if not rows:
            return
        if session is None:
            with self.db.session() as s:
                self._add(s, rows)
        else:
            self._add(session, rows)

    def _add(self, s: Session, rows: list[UsageDelta]) -> None:
        insert = self._insert()
        for d in rows:
            values = {"owner": d.owner, "model": d.model, "day": d.day,
                      **{c: getattr(d, c) for c in COUNTERS}}
            if insert is None:
                self._add_portable(s, values)
                continue
            stmt = insert(UsageDay).values(**values)
            s.execute(stmt.on_conflict_do_update(
                index_elements=["owner", "model", "day"],
                set_={c: getattr(UsageDay, c) + getattr(stmt.excluded, c) for c in COUNTERS}))

    def _insert(self):
        if self._dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
            return insert
        if self._dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
            return insert
        return None

    @staticmethod
    def _add_portable(s, values: dict) -> None:
        # Other databases: update, else insert (not atomic across servers; SQLite and
        # PostgreSQL, the supported ones, take the upsert above).
        key = (UsageDay.owner == values["owner"], UsageDay.model == values["model"],
               UsageDay.day == values["day"])
        res = s.execute(update(UsageDay).where(*key).values(
            **{c: getattr(UsageDay, c) + values[c] for c in COUNTERS}))
        if not res.rowcount:
            s.add(UsageDay(**values))

    def rows(self, owner: str | None = None, since: str | None = None,
             until: str | None = None) -> list[UsageDay]:
        """Rows of one owner (None: everyone's) between two days (inclusive), oldest first."""
        query = select(UsageDay)
        if owner is not None:
            query = query.where(UsageDay.owner == owner)
        if since:
            query = query.where(UsageDay.day >= since)
        if until:
            query = query.where(UsageDay.day <= until)
        with self.db.session() as s:
            return list(s.scalars(query.order_by(UsageDay.day, UsageDay.owner, UsageDay.model)))

    def audio_seconds(self, owner: str, day: str) -> float:
        """The owner's recorded audio seconds of one day, all models."""
        with self.db.session() as s:
            return float(s.scalar(select(func.coalesce(func.sum(UsageDay.audio_seconds), 0.0))
                                  .where(UsageDay.owner == owner, UsageDay.day == day)) or 0.0)

"""Usage metering: audio seconds, requests, tasks and failures per key, model and UTC day, and the
daily audio hours limit that is enforced from them.

Protocols call `record` once where a recognition ends, with the audio seconds its result's `usage`
field reports. The call only adds to an in-memory batch (cheap on the event loop); a background
thread writes batches to the shared database with an atomic upsert, so every server and worker
adds to the same rows. `flush` writes what is pending now (the usage API calls it first, so a
caller reads its own usage back at once).

A key's usage is kept under its data owner: `key-<id>` for database keys (tokens share their
key's owner), a hash of the key for config keys, "" in open mode. `key_id` in reports is the
database key's id, or that owner for the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date

from voxscope.config import Settings
from voxscope.errors import INVALID_PARAMETER, THROTTLING_QUOTA, ServiceError
from voxscope.service.auth import Principal
from voxscope.storage.api_keys import key_owner
from voxscope.storage.database import Database
from voxscope.storage.usage import UsageDelta, UsageStore, today

log = logging.getLogger(__name__)

CACHE_S = 5.0  # a day's total per key is re-read from the database at most this often
FLUSH_EVERY_S = 0.5  # the background writer's period
_KEY_PREFIX = key_owner("")


def key_id_of(owner: str) -> str:
    """The id shown for an owner: a database key's id, else the owner itself."""
    return owner[len(_KEY_PREFIX):] if owner.startswith(_KEY_PREFIX) else owner


def owner_of(key_id: str) -> str:
    """The inverse of key_id_of for an id typed by an operator (a key id or an owner hash)."""
    return key_owner(key_id) if len(key_id) == 16 and not key_id.startswith(_KEY_PREFIX) \
        else key_id


@dataclass(frozen=True)
class UsageRow:
    key_id: str
    model: str
    date: str
    audio_seconds: float
    requests: int
    tasks: int
    failures: int

    def as_dict(self) -> dict:
        return asdict(self)


def known_model(settings: Settings, name: object) -> str:
    """The profile name a request named, for a usage record ("" when unknown: a stranger's
    made-up model names must not become rows)."""
    profile = settings.profile(name) if isinstance(name, str) and name else None
    return profile.name if profile is not None else ""


def parse_day(value: str | None, name: str) -> str | None:
    """A YYYY-MM-DD day (or None); ServiceError(InvalidParameter) otherwise."""
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ServiceError(INVALID_PARAMETER, f"{name} must be a date YYYY-MM-DD, got {value!r}",
                           param=name) from None


def report(store: UsageStore, owner: str | None = None, since: str | None = None,
           until: str | None = None) -> list[UsageRow]:
    return [UsageRow(key_id_of(r.owner), r.model, r.day, round(r.audio_seconds, 3), r.requests,
                     r.tasks, r.failures) for r in store.rows(owner, since, until)]


class Metering:
    """Records usage (batched, written by a background thread) and enforces daily audio hours."""

    def __init__(self, db: Database, cache_s: float = CACHE_S) -> None:
        self.store = UsageStore(db)
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one batch written at a time
        self._pending: dict[tuple[str, str, str], list[float]] = {}
        self._writing: dict[tuple[str, str, str], list[float]] = {}  # taken, not yet committed
        self._totals: dict[tuple[str, str], tuple[float, float]] = {}  # (owner, day) -> (until, s)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    # -- recording ---------------------------------------------------------------------------------
    def record(self, who: Principal | str | None, model: str, audio_s: float = 0.0,
               requests: int = 1, tasks: int = 0, failures: int = 0) -> None:
        """Add to today's row of the caller and model (cheap: written in the background)."""
        if who is None:
            return
        owner = who.owner if isinstance(who, Principal) else who
        key = (owner, model or "", today())
        with self._lock:
            self._add_pending(key, (audio_s, requests, tasks, failures))
        self._ensure_writer()
        self._wake.set()

    def flush(self) -> None:
        """Write what is pending now (blocking)."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._writing = batch
            if not batch:
                return
            try:
                self.store.add(UsageDelta(owner, model, day, *counts)
                               for (owner, model, day), counts in batch.items())
            except Exception:  # noqa: BLE001 - kept and tried again: usage is not dropped
                log.warning("could not write usage; will retry", exc_info=True)
                with self._lock:
                    for key, counts in batch.items():
                        self._add_pending(key, counts)
                raise
            finally:
                with self._lock:
                    self._writing = {}
                    # the database now holds these: re-read the owners' totals on next use
                    for owner, _model, day in batch:
                        self._totals.pop((owner, day), None)

    def _add_pending(self, key: tuple[str, str, str], counts: Iterable[float]) -> None:
        """Add counts (audio s, requests, tasks, failures) to a pending row; holds self._lock."""
        row = self._pending.setdefault(key, [0.0, 0, 0, 0])
        for i, v in enumerate(counts):
            row[i] += v

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._writer is not None:
            self._writer.join(timeout=10)
        with contextlib.suppress(Exception):  # already logged; nothing more to do at exit
            self.flush()

    def _ensure_writer(self) -> None:
        if self._writer is not None:
            return
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="voxscope-usage",
                                                daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_EVERY_S)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - logged in flush; retried next period
                time.sleep(FLUSH_EVERY_S)

    # -- the daily audio limit ---------------------------------------------------------------------
    def audio_today(self, owner: str) -> float:
        """Today's audio seconds of an owner: the database's total (cached ≤ cache_s) plus what
        this process recorded and has not written yet (blocking on a cache miss)."""
        day = today()
        now = time.monotonic()
        with self._lock:
            cached = self._totals.get((owner, day))
        if cached is None or cached[0] <= now:
            total = self.store.audio_seconds(owner, day)
            with self._lock:
                self._totals[(owner, day)] = (now + self.cache_s, total)
        else:
            total = cached[1]
        with self._lock:
            local = sum(c[0] for rows in (self._pending, self._writing)
                        for (o, _m, d), c in rows.items() if o == owner and d == day)
        return total + local

    def admit(self, principal: Principal | None) -> None:
        """Refuse a new session, request or task of a key whose audio today reached its
        `daily_audio_hours` (Throttling.AllocationQuota, 429). Running sessions are not cut."""
        hours = principal.limits.daily_audio_hours if principal and principal.limits else None
        if not hours:
            return
        assert principal is not None
        used = self.audio_today(principal.owner)
        if used >= hours * 3600:
            raise ServiceError(THROTTLING_QUOTA, f"Allocated quota exceeded: this key allows "
                               f"{hours:g} hours of audio per day (UTC) and has used "
                               f"{used / 3600:.3f}; retry tomorrow", 429)

    async def admit_async(self, principal: Principal | None) -> None:
        """`admit` for the event loop: a key without a daily limit costs nothing, a limited one
        reads the database off the loop."""
        if principal is None or not principal.limits or not principal.limits.daily_audio_hours:
            return
        await asyncio.to_thread(self.admit, principal)

    # -- reading -----------------------------------------------------------------------------------
    def report(self, owner: str | None = None, since: str | None = None,
               until: str | None = None) -> list[UsageRow]:
        return report(self.store, owner, since, until)


def totals(rows: Iterable[UsageRow]) -> defaultdict[str, dict[str, float]]:
    """Per key_id sums over rows (for `keys list`: today's usage); zeros for a key with none."""
    out: defaultdict[str, dict[str, float]] = defaultdict(
        lambda: {"audio_seconds": 0.0, "requests": 0, "tasks": 0, "failures": 0})
    for r in rows:
        t = out[r.key_id]
        t["audio_seconds"] += r.audio_seconds
        t["requests"] += r.requests
        t["tasks"] += r.tasks
        t["failures"] += r.failures
    return out

"""The composition root: the services a running server is made of, built once from Settings and
shared by every protocol adapter."""

from __future__ import annotations

from dataclasses import dataclass, field

from voxscope.config import Settings
from voxscope.engine.hub import Engine
from voxscope.jobs.workers import TaskService
from voxscope.service.auth import KeyChecker
from voxscope.service.capacity import Capacity
from voxscope.service.drain import Drain
from voxscope.service.keys import KeyRing
from voxscope.service.limits import Limiter, LocalLimiter
from voxscope.service.metrics import Metrics
from voxscope.storage.api_keys import KeyStore
from voxscope.storage.database import Database
from voxscope.storage.private import make_private_dir
from voxscope.storage.signing import Signer, load_secret
from voxscope.storage.vocabularies import VocabularyStore


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    keys: KeyRing
    capacity: Capacity
    metrics: Metrics
    db: Database
    signer: Signer
    tasks: TaskService
    vocabularies: VocabularyStore
    drain: Drain = field(default_factory=Drain)  # live sessions, and whether we shut down

    @classmethod
    def create(cls, settings: Settings, engine: Engine | None = None) -> Runtime:
        make_private_dir(settings.data_dir)
        engine = engine or Engine(settings)
        db = Database(settings.db_url())
        limiter = make_limiter(settings)
        keys = KeyRing(KeyChecker(settings.api_keys), KeyStore(db), limiter=limiter)
        return cls(settings=settings, engine=engine, keys=keys,
                   capacity=Capacity(settings.max_sessions, limiter), metrics=Metrics(), db=db,
                   signer=Signer(load_secret(settings.secret_key, settings.data_dir)),
                   tasks=TaskService(settings, db, engine),
                   vocabularies=VocabularyStore(db, settings.max_vocabularies))

    def __post_init__(self) -> None:
        # Metrics: the engine's timings, and what /metrics reads when it is scraped.
        self.engine.observer = self.metrics
        self.metrics.watch(
            lambda: {name: s.queue_depth for name, s in self.engine.schedulers.items()},
            self.tasks.repo.counts_by_state)


def make_limiter(settings: Settings) -> Limiter:
    """Limits across all servers when they share a Redis (`queue_url: redis://…`), else in this
    process only."""
    url = settings.queue_url or ""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from voxscope.service.redis_limits import RedisLimiter

        return RedisLimiter(url, lease_s=settings.session_lease_s)
    return LocalLimiter()

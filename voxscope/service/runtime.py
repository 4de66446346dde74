"""What every protocol adapter of a running server shares."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.websockets import WebSocket

from voxscope.config import Settings
from voxscope.engine.hub import Engine
from voxscope.jobs.workers import TaskService
from voxscope.protocols.errors import INVALID_API_KEY, UNAUTHORIZED_MESSAGE, error_response
from voxscope.service.auth import KeyChecker
from voxscope.service.capacity import Capacity
from voxscope.service.metrics import Metrics
from voxscope.storage.database import Database
from voxscope.storage.signing import Signer, load_secret
from voxscope.storage.vocabularies import VocabularyStore


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    keys: KeyChecker
    capacity: Capacity
    metrics: Metrics
    db: Database
    signer: Signer
    tasks: TaskService
    vocabularies: VocabularyStore

    @classmethod
    def create(cls, settings: Settings, engine: Engine | None = None) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = engine or Engine(settings)
        db = Database(settings.db_url())
        return cls(settings=settings, engine=engine, keys=KeyChecker(settings.api_keys),
                   capacity=Capacity(settings.max_sessions), metrics=Metrics(), db=db,
                   signer=Signer(load_secret(settings.secret_key, settings.data_dir)),
                   tasks=TaskService(settings, db, engine),
                   vocabularies=VocabularyStore(db, settings.max_vocabularies))

    async def accept(self, ws: WebSocket) -> bool:
        """Check the API key of a WebSocket upgrade; accept it or refuse it with 401."""
        if not self.keys.allows_headers(ws.headers):
            await self.deny(ws, 401, INVALID_API_KEY, UNAUTHORIZED_MESSAGE)
            return False
        await ws.accept()
        self.metrics.connections.inc()
        return True

    async def deny(self, ws: WebSocket, status: int, code: str, message: str) -> None:
        """Refuse a WebSocket upgrade with an HTTP status and DashScope's JSON error body."""
        try:
            await ws.send_denial_response(error_response(status, code, message))
        except RuntimeError:  # server without the denial extension: a plain refusal (403)
            await ws.close(code=1008, reason=code)

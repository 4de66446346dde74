"""The ASGI application: routes of every protocol on one FastAPI app."""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from voxscope import __version__
from voxscope.config import Settings
from voxscope.inputs.sources import expire_uploads
from voxscope.protocols.inference_ws import InferenceConnection
from voxscope.protocols.realtime_ws import RealtimeConnection
from voxscope.protocols.rest import install_error_handlers
from voxscope.server.guards import Guard
from voxscope.server.runtime import Runtime
from voxscope.server.shutdown import Drain

log = logging.getLogger(__name__)


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or Runtime.create(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Load every model before accepting traffic: the first user should not wait for it.
        rt.engine.preload()
        if rt.settings.workers > 0:
            rt.tasks.start_workers(rt.settings.workers)
        sweeper = asyncio.create_task(_sweep_uploads(rt))
        yield
        sweeper.cancel()
        rt.tasks.stop()
        rt.engine.close()
        rt.db.close()

    app = FastAPI(title="voxscope", version=__version__, lifespan=lifespan)
    app.state.runtime = rt
    app.state.drain = drain = Drain()
    app.add_middleware(Guard, settings=rt.settings, keys=rt.keys, drain=drain)
    install_error_handlers(app)
    # REST routers (each protocol module exposes `router`); all live under /api/v1 like DashScope.
    for router in _rest_routers():
        app.include_router(router)

    @app.websocket("/api-ws/v1/inference")
    @app.websocket("/api-ws/v1/inference/")
    async def inference(ws: WebSocket) -> None:
        conn = InferenceConnection(ws, rt)
        async with drain.session(lambda: conn.task is not None, conn.shutdown):
            await conn.run()

    @app.websocket("/api-ws/v1/realtime")
    @app.websocket("/api-ws/v1/realtime/")
    async def realtime(ws: WebSocket) -> None:
        conn = RealtimeConnection(ws, rt)
        async with drain.session(lambda: True, conn.shutdown):
            await conn.run()

    @app.get("/health")
    async def health(request: Request) -> dict:
        if rt.keys.enabled and not rt.keys.allows_headers(request.headers):
            return {"status": "ok"}  # liveness only: internals need a key
        return {
            "status": "ok",
            "version": __version__,
            "auth": "api-key" if rt.keys.enabled else "open (no keys configured)",
            "active_tasks": rt.capacity.active,
            "max_sessions": rt.capacity.limit,
            "threads": threading.active_count(),
            "models": {name: {"path": str(s.backend.model_path), "queue": s.queue_depth,
                              "decoded": s.stats.decoded, "batches": s.stats.batches,
                              "served": dict(s.stats.served_by_priority)}
                       for name, s in rt.engine.schedulers.items()},
        }

    @app.get("/metrics")
    async def metrics() -> Response:
        m = rt.metrics
        scheds = rt.engine.schedulers.values()
        m.queue_depth.set(sum(s.queue_depth for s in scheds))
        m.busy_seconds.set(sum(s.stats.busy_seconds for s in scheds))
        m.queue_wait.set(max((s.stats.max_queue_wait_seconds for s in scheds), default=0.0))
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse(status_code=500, content={"request_id": "", "code": "InternalError",
                                                      "message": str(exc) or "internal error"})

    return app


async def _sweep_uploads(rt: Runtime) -> None:
    while True:
        try:
            removed = await asyncio.to_thread(expire_uploads, rt.settings)
            if removed:
                log.info("removed %d expired uploads", removed)
        except Exception:
            log.warning("upload sweep failed", exc_info=True)
        await asyncio.sleep(600)


def _rest_routers() -> list:
    from voxscope.protocols import (
        multimodal,
        openai_audio,
        transcription_rest,
        uploads,
        vocabulary_rest,
    )

    return [vocabulary_rest.router, transcription_rest.router, uploads.router, multimodal.router,
            openai_audio.router]

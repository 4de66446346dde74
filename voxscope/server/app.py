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

from voxscope import __version__, allocator
from voxscope.config import Settings
from voxscope.inputs.sources import expire_uploads
from voxscope.protocols.app_runtime import attach
from voxscope.protocols.inference_ws import InferenceConnection
from voxscope.protocols.realtime_ws import RealtimeConnection
from voxscope.protocols.rest import install_error_handlers
from voxscope.server.guards import Guard
from voxscope.service.drain import SHUTDOWN_CODE, SHUTDOWN_MESSAGE
from voxscope.service.runtime import Runtime
from voxscope.web.routes import install_console

log = logging.getLogger(__name__)


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or Runtime.create(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Load every model before accepting traffic: the first user should not wait for it.
        rt.engine.preload()
        if rt.settings.admit_max_load > 0:  # admission by measured load prices streams from it
            rt.engine.time_finals()
        if rt.settings.workers > 0:
            rt.tasks.start_workers(rt.settings.workers)
        sweeper = asyncio.create_task(_sweep_uploads(rt))
        app.state.ready = True  # models loaded: /health/ready may send traffic here
        yield
        app.state.ready = False
        sweeper.cancel()
        rt.tasks.stop()
        rt.engine.close()
        rt.usage.close()  # pending usage records reach the database
        rt.db.close()

    app = FastAPI(title="voxscope", version=__version__, lifespan=lifespan)
    attach(app, rt)
    app.state.ready = False
    drain = rt.drain
    app.add_middleware(Guard, settings=rt.settings, keys=rt.keys, drain=drain)
    install_error_handlers(app)
    # REST routers (each protocol module exposes `router`); all live under /api/v1 like DashScope.
    for router in _rest_routers():
        app.include_router(router)
    install_console(app)  # the web console at / (static files; a client of the routes above)

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

    def lifecycle() -> str:
        if drain.draining:
            return "draining"
        return "ok" if app.state.ready else "starting"

    @app.get("/health/live")
    async def health_live() -> dict:
        return {"status": "ok"}  # the process serves requests (also while draining)

    @app.get("/health/ready")
    async def health_ready() -> JSONResponse:
        # What a load balancer / readiness probe asks: may new sessions be sent here?
        status = lifecycle()
        ready = status == "ok"
        return JSONResponse(status_code=200 if ready else 503,
                            content={"status": "ready" if ready else status, "ready": ready})

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        status = lifecycle()
        if drain.draining:  # 503 like every request refused while draining, but says so
            return JSONResponse(status_code=503, content={
                "request_id": "", "code": SHUTDOWN_CODE, "message": SHUTDOWN_MESSAGE,
                "status": status, "ready": False})
        if not rt.keys.admits(request.headers):
            return JSONResponse({"status": "ok"})  # liveness only: internals need a key
        return JSONResponse({
            "status": status,
            "ready": status == "ok",
            "version": __version__,
            "auth": "api-key" if rt.keys.enabled else "open (no keys configured)",
            "active_tasks": rt.capacity.active,
            "max_sessions": rt.capacity.limit,
            "threads": threading.active_count(),
            "thread_pools": rt.engine.threads.report(),
            "models": {name: {"path": str(s.backend.model_path), "queue": s.queue_depth,
                              "decoded": s.stats.decoded, "batches": s.stats.batches,
                              "served": dict(s.stats.served_by_priority),
                              "file_lane": s.file_backend is not None,
                              "file_lane_loads": s.file_lane_loads}
                       for name, s in rt.engine.schedulers.items()},
        })

    @app.get("/metrics")
    async def metrics() -> Response:
        m = rt.metrics
        scheds = rt.engine.schedulers.values()
        m.queue_depth.set(sum(s.queue_depth for s in scheds))
        m.busy_seconds.set(sum(s.stats.busy_seconds for s in scheds))
        m.queue_wait.set(max((s.stats.max_queue_wait_seconds for s in scheds), default=0.0))
        m.malloc_arenas.set(allocator.arenas() or 0)
        # Off the event loop: a scrape counts file tasks in the database.
        body = await asyncio.to_thread(generate_latest, m.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

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
        openai_models,
        tokens_rest,
        transcription_rest,
        uploads,
        usage_rest,
        vocabulary_rest,
    )

    return [vocabulary_rest.router, transcription_rest.router, uploads.router, multimodal.router,
            openai_audio.router, openai_models.router, tokens_rest.router, usage_rest.router]

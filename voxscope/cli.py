"""Command line: `voxscope serve`, `voxscope worker`, `voxscope transcribe`, `voxscope models`."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from enum import StrEnum
from pathlib import Path

import typer

from voxscope import allocator
from voxscope.config import MIN_KEY_LENGTH, ConfigError, Settings, load_settings
from voxscope.storage.private import make_private_dir, restrict_new_files

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Self-hosted speech recognition speaking the DashScope speech APIs.")


def _settings(config: Path | None, **overrides) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def serve(
    host: str = typer.Option(None, help="Address to listen on (default 127.0.0.1)"),
    port: int = typer.Option(None, help="Port (default 8000)"),
    data_dir: Path = typer.Option(None, help="Folder for the database and files"),
    config: Path = typer.Option(None, help="YAML config file (server settings, keys, profiles)"),
    api_key: list[str] = typer.Option(None, "--api-key", help="Accept this API key (repeatable)"),
    max_sessions: int = typer.Option(None, help="Concurrent realtime tasks before refusing"),
    insecure: bool = typer.Option(False, "--insecure",
                                  help="Allow a non-loopback address without API keys"),
    log_level: str = typer.Option("info"),
) -> None:
    """Run the HTTP + WebSocket server."""
    allocator.configure()  # before any thread starts: keeps RSS flat under concurrent load
    import uvicorn

    from voxscope.server.app import create_app
    from voxscope.server.shutdown import DrainingServer

    settings = _settings(config, host=host, port=port, data_dir=data_dir,
                         api_keys=api_key or None, max_sessions=max_sessions,
                         insecure=insecure or None)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not settings.auth_enabled:
        if not settings.loopback_only() and not settings.insecure:
            typer.echo(
                f"refusing to listen on {settings.host} without API keys: anyone on the network "
                "could use this server. Configure keys (--api-key, VOXSCOPE_API_KEYS or api_keys "
                "in the config file) or pass --insecure.", err=True)
            raise typer.Exit(2)
        typer.echo("voxscope: no API keys configured: accepting any key (local development"
                   + (f"); listening on {settings.host} only." if settings.loopback_only()
                      else f"); WARNING: --insecure, listening on {settings.host}."), err=True)
    else:
        typer.echo(f"voxscope: API keys required ({len(settings.api_keys)} configured).", err=True)
        for i in settings.short_keys():
            logging.getLogger("voxscope").warning(
                "API key #%d is shorter than %d characters: easy to guess, use a long random key",
                i, MIN_KEY_LENGTH)
    restrict_new_files()
    make_private_dir(settings.data_dir)
    fastapi_app = create_app(settings)
    config = uvicorn.Config(fastapi_app, host=settings.host, port=settings.port,
                            log_level=log_level, ws_max_size=max(settings.max_frame_bytes * 4, 16 << 20))
    server = DrainingServer(config, fastapi_app.state.runtime.drain, settings.shutdown_drain_s)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:  # as uvicorn.run: a server that never started (port taken, ...)
        raise typer.Exit(3)


@app.command()
def worker(
    data_dir: Path = typer.Option(None, help="Folder for the database and work files"),
    config: Path = typer.Option(None, help="YAML config file (queue_url, database_url, ...)"),
    workers: int = typer.Option(None, help="Tasks run at once by this process (default 1)"),
    log_level: str = typer.Option("info", help="debug, info, warning, error"),
) -> None:
    """Run file-transcription tasks from the shared queue (no HTTP): add these on more machines,
    pointing at the same `queue_url` (Redis) and `database_url` as the API process."""
    allocator.configure()  # before any thread starts, as in serve
    import signal
    import threading

    from voxscope.engine.hub import Engine
    from voxscope.jobs.workers import TaskService
    from voxscope.storage.database import Database

    settings = _settings(config, data_dir=data_dir, workers=workers)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    restrict_new_files()
    make_private_dir(settings.data_dir)
    engine = Engine(settings)
    engine.preload()
    db = Database(settings.db_url())
    service = TaskService(settings, db, engine)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    count = max(settings.workers, 1)
    service.start_workers(count)
    typer.echo(f"voxscope worker: {count} task worker(s) on queue {settings.queue_target()}",
               err=True)
    stop.wait()
    typer.echo("voxscope worker: stopping (running tasks are handed back)", err=True)
    service.stop()
    engine.close()
    db.close()


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    srt = "srt"
    vtt = "vtt"


@app.command()
def transcribe(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    model: str = typer.Option("paraformer-realtime-v2",
                              help="Profile name (its local model is used) or a model folder"),
    language: str = typer.Option(None, help="Language code; detected when omitted"),
    output: OutputFormat = typer.Option(OutputFormat.text, "--output", "-o"),
    config: Path = typer.Option(None, help="YAML config file"),
    progress: bool = typer.Option(True, help="Show a progress bar on stderr"),
) -> None:
    """Transcribe files in-process (no server), any format FFmpeg reads."""
    from tqdm import tqdm

    from voxscope.audio import AudioFormatError, iter_file_chunks
    from voxscope.audio.file_decoder import probe_duration
    from voxscope.engine.hub import Engine
    from voxscope.engine.model_store import ModelError
    from voxscope.engine.offline import OfflineOptions, transcribe_chunks

    settings = _settings(config, max_batch=4)
    try:
        engine = Engine(settings)
        prof = settings.profile(model)
        sched = engine.scheduler(prof.model if prof else model)
    except ModelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    allowed = tuple(engine.languages(prof)) if prof and prof.languages else None
    opts = OfflineOptions(language=language, allowed_languages=allowed)
    documents = []
    failed: list[str] = []
    try:
        for path in files:
            duration = probe_duration(path)
            bar = tqdm(total=round(duration or 0, 1) or None, unit="s", desc=path.name,
                       disable=not progress or (duration or 0) < 30, file=sys.stderr,
                       bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s [{elapsed}<{remaining}]")

            def advance(seconds: float, bar=bar) -> None:
                bar.update(seconds - bar.n)

            try:
                sentences = list(transcribe_chunks(iter_file_chunks(path), sched, engine.vad, opts,
                                                   progress=advance))
            except (AudioFormatError, OSError) as exc:
                failed.append(f"error: {path}: {getattr(exc, 'message', None) or exc}")
                continue
            finally:
                bar.close()
            documents.append((path, sentences))
    finally:
        engine.close()

    for path, sentences in documents:
        if output == OutputFormat.text:
            typer.echo(" ".join(s.text for s in sentences) if sentences and sentences[0].language
                       not in ("zh", "ja") else "".join(s.text for s in sentences))
        elif output == OutputFormat.json:
            # One compact JSON document per line (JSON Lines), so several files stay parseable.
            typer.echo(json.dumps({
                "file": str(path),
                "sentences": [{
                    "begin_time": int(s.begin * 1000), "end_time": int(s.end * 1000),
                    "text": s.text, "language": s.language,
                    "words": [{"begin_time": int(w.start * 1000), "end_time": int(w.end * 1000),
                               "text": w.text, "punctuation": w.punctuation} for w in s.words],
                } for s in sentences]}, ensure_ascii=False))
        else:
            from voxscope.service.formats import srt, vtt

            typer.echo((srt if output == OutputFormat.srt else vtt)(sentences), nl=False)
    for message in failed:
        typer.echo(message, err=True)
    if failed:
        raise typer.Exit(1)


@app.command()
def models(config: Path = typer.Option(None, help="YAML config file")) -> None:
    """List model profiles, where each local model's files are and whether they are installed."""
    from voxscope.engine.model_store import ModelStore

    settings = _settings(config)
    store = ModelStore(settings.cache_dir)
    statuses = {}
    for prof in settings.profiles.values():
        spec = settings.models.get(prof.model)
        ref = spec.path if spec else prof.model
        if ref not in statuses:
            statuses[ref] = store.status(ref)
    rows = [("PROFILE", "KIND", "RATES", "MODEL", "STATUS")]
    for name, prof in sorted(settings.profiles.items()):
        spec = settings.models.get(prof.model)
        st = statuses[spec.path if spec else prof.model]
        rates = "any" if prof.sample_rates == "any" else ",".join(str(r) for r in prof.sample_rates)
        alias = f" (+{', '.join(prof.aliases)})" if prof.aliases else ""
        rows.append((name, prof.kind, rates, prof.model,
                     f"{'installed' if st.installed else 'MISSING'}{alias}"))
    # Column widths from the content: a profile with many rates or a long name stays aligned.
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[4])
    typer.echo("")
    for ref, st in statuses.items():
        typer.echo(f"{ref}: {st.path if st.path else st.detail}")
    try:
        typer.echo(f"silero-vad: {store.silero_vad_path()}")
    except Exception as exc:  # noqa: BLE001 - shown to the user as-is
        typer.echo(f"silero-vad: MISSING ({exc})")


if __name__ == "__main__":
    app()

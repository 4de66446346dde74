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

    from voxscope.protocols.app_runtime import runtime_of
    from voxscope.server import access_log
    from voxscope.server.app import create_app
    from voxscope.server.shutdown import DrainingServer

    settings = _settings(config, host=host, port=port, data_dir=data_dir,
                         api_keys=api_key or None, max_sessions=max_sessions,
                         insecure=insecure or None)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db_keys = _db_key_count(settings)
    if not settings.auth_enabled and not db_keys:
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
        typer.echo(f"voxscope: API keys required ({len(settings.api_keys)} configured, "
                   f"{db_keys} in the database).", err=True)
        for i in settings.short_keys():
            logging.getLogger("voxscope").warning(
                "API key #%d is shorter than %d characters: easy to guess, use a long random key",
                i, MIN_KEY_LENGTH)
    restrict_new_files()
    make_private_dir(settings.data_dir)
    fastapi_app = create_app(settings)
    config = uvicorn.Config(fastapi_app, host=settings.host, port=settings.port,
                            log_level=log_level, ws_max_size=max(settings.max_frame_bytes * 4, 16 << 20))
    access_log.install()  # after uvicorn.Config set its loggers up
    server = DrainingServer(config, runtime_of(fastapi_app).drain, settings.shutdown_drain_s)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:  # as uvicorn.run: a server that never started (port taken, ...)
        raise typer.Exit(3)


def _db_key_count(settings: Settings) -> int:
    """Keys created with `voxscope keys create` (revoked ones too): with any, the server runs
    keyed."""
    from voxscope.storage.api_keys import KeyStore
    from voxscope.storage.database import Database

    restrict_new_files()  # the database file may be created here: private from the start
    make_private_dir(settings.data_dir)
    db = Database(settings.db_url())
    try:
        return len(KeyStore(db).list())
    finally:
        db.close()


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


# -- API keys kept in the database ---------------------------------------------------------------
keys_app = typer.Typer(no_args_is_help=True, help="Create, list, update and revoke API keys kept "
                       "in the database (shared by every server using the same database_url).")
app.add_typer(keys_app, name="keys")

_DATA_DIR = typer.Option(None, help="Folder for the database (as given to serve)")
_CONFIG = typer.Option(None, help="YAML config file (database_url, ...)")


def _key_store(config: Path | None, data_dir: Path | None):
    from voxscope.storage.api_keys import KeyStore
    from voxscope.storage.database import Database

    settings = _settings(config, data_dir=data_dir)
    restrict_new_files()
    make_private_dir(settings.data_dir)
    return KeyStore(Database(settings.db_url()))


def _expiry(value: str | None):
    """A date or date-time (ISO 8601, UTC when no zone is given) as a naive UTC datetime."""
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        typer.echo(f"error: --expires: not an ISO date or date-time: {value!r}", err=True)
        raise typer.Exit(2) from exc
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _limits_text(rec) -> str:
    parts = [f"{name}={value:g}" for name, value in (
        ("sessions", rec.max_sessions), ("rps", rec.rps), ("queued", rec.max_queued_tasks),
        ("audio_h/day", rec.daily_audio_hours)) if value is not None]
    return ",".join(parts) or "-"


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., "--name", help="What the key is for (shown by list)"),
    max_sessions: int = typer.Option(None, help="Concurrent realtime/sync sessions"),
    rps: float = typer.Option(None, help="Requests per second"),
    max_queued_tasks: int = typer.Option(None, help="File tasks queued or running at once"),
    daily_audio_hours: float = typer.Option(None, help="Hours of audio recognized per UTC day"),
    expires: str = typer.Option(None, help="Expiry date (ISO 8601, e.g. 2027-01-31)"),
    config: Path = _CONFIG,
    data_dir: Path = _DATA_DIR,
) -> None:
    """Create a key and print it once: only its hash is kept, it cannot be shown again."""
    store = _key_store(config, data_dir)
    rec, key = store.create(name, expires=_expiry(expires), max_sessions=max_sessions, rps=rps,
                            max_queued_tasks=max_queued_tasks, daily_audio_hours=daily_audio_hours)
    typer.echo(f"created key {rec.id} ({name}); store it now, it is not shown again:", err=True)
    typer.echo(key)


@keys_app.command("list")
def keys_list(config: Path = _CONFIG, data_dir: Path = _DATA_DIR,
              output_json: bool = typer.Option(False, "--json", help="JSON Lines output")) -> None:
    """The keys (never the keys themselves): id, name, created, last used, expiry, state, limits,
    today's usage (UTC day: audio seconds, requests, file tasks, failures)."""
    from voxscope.service.usage import report, totals
    from voxscope.storage.usage import UsageStore, today

    store = _key_store(config, data_dir)
    records = store.list()
    used = totals(report(UsageStore(store.db), since=today(), until=today()))

    def when(value) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else "-"

    if output_json:
        for r in records:
            typer.echo(json.dumps({
                "id": r.id, "name": r.name, "created": when(r.created),
                "last_used": when(r.last_used) if r.last_used else None,
                "expires": when(r.expires) if r.expires else None,
                "state": "active" if r.active() else ("revoked" if r.revoked else "expired"),
                "max_sessions": r.max_sessions, "rps": r.rps,
                "max_queued_tasks": r.max_queued_tasks, "daily_audio_hours": r.daily_audio_hours,
                "today": used[r.id]}))
        return
    rows = [("ID", "NAME", "CREATED", "LAST USED", "EXPIRES", "STATE", "LIMITS", "TODAY")]
    for r in records:
        t = used[r.id]
        rows.append((r.id, r.name, when(r.created), when(r.last_used), when(r.expires),
                     "active" if r.active() else ("revoked" if r.revoked else "expired"),
                     _limits_text(r), f"{t['audio_seconds']:g}s/{t['requests']:g}req/"
                     f"{t['tasks']:g}tasks/{t['failures']:g}fail"))
    _echo_table(rows)


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key's id (from list)"),
                config: Path = _CONFIG, data_dir: Path = _DATA_DIR) -> None:
    """Revoke a key and its temporary tokens (every server refuses them within 5 s)."""
    if not _key_store(config, data_dir).revoke(key_id):
        typer.echo(f"error: no key {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked key {key_id}", err=True)


@keys_app.command("update")
def keys_update(
    key_id: str = typer.Argument(..., help="The key's id (from list)"),
    name: str = typer.Option(None, "--name"),
    max_sessions: int = typer.Option(None, help="0 removes the limit"),
    rps: float = typer.Option(None, help="0 removes the limit"),
    max_queued_tasks: int = typer.Option(None, help="0 removes the limit"),
    daily_audio_hours: float = typer.Option(None, help="0 removes the limit"),
    expires: str = typer.Option(None, help="Expiry date (ISO 8601); 'never' removes it"),
    config: Path = _CONFIG,
    data_dir: Path = _DATA_DIR,
) -> None:
    """Change a key's name, limits or expiry (options not given stay as they are)."""
    changes: dict = {k: v for k, v in (
        ("name", name), ("max_sessions", max_sessions), ("rps", rps),
        ("max_queued_tasks", max_queued_tasks), ("daily_audio_hours", daily_audio_hours))
        if v is not None}
    if expires is not None:
        changes["expires"] = None if expires == "never" else _expiry(expires)
    rec = _key_store(config, data_dir).update(key_id, **changes)
    if rec is None:
        typer.echo(f"error: no key {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"updated key {rec.id}: {_limits_text(rec)}", err=True)


class UsageFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _echo_table(rows: list[tuple[str, ...]]) -> None:
    """Rows as aligned columns, each as wide as its longest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@app.command("usage")
def usage(
    key: str = typer.Option(None, "--key", help="Only this key (its id; a config key's owner)"),
    since: str = typer.Option(None, help="First UTC day, YYYY-MM-DD"),
    until: str = typer.Option(None, help="Last UTC day, YYYY-MM-DD"),
    fmt: UsageFormat = typer.Option(UsageFormat.table, "--format", help="table, json or csv"),
    config: Path = _CONFIG,
    data_dir: Path = _DATA_DIR,
) -> None:
    """Usage per key, model and UTC day: audio seconds, requests, file tasks, failures (the same
    numbers as GET /api/v1/usage, from the shared database)."""
    import csv

    from voxscope.errors import ServiceError
    from voxscope.service.usage import UsageRow, owner_of, parse_day, report
    from voxscope.storage.usage import UsageStore

    try:
        first, last = parse_day(since, "--since"), parse_day(until, "--until")
    except ServiceError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    store = UsageStore(_key_store(config, data_dir).db)
    rows = report(store, owner_of(key) if key else None, first, last)
    fields = list(UsageRow.__dataclass_fields__)
    if fmt == UsageFormat.json:
        typer.echo(json.dumps({"usage": [r.as_dict() for r in rows]}, indent=2))
    elif fmt == UsageFormat.csv:
        out = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        out.writeheader()
        out.writerows(r.as_dict() for r in rows)
    else:
        table = [tuple(f.upper() for f in fields)]
        table += [(r.key_id, r.model or "-", r.date, f"{r.audio_seconds:g}", str(r.requests),
                   str(r.tasks), str(r.failures)) for r in rows]
        _echo_table(table)


if __name__ == "__main__":
    app()

"""Settings (environment / CLI / config file) and model profiles.

Precedence: CLI flags > environment (VOXSCOPE_*) > the `server:` section of the config file >
defaults. Profiles come from the bundled profiles.yaml; a config file's `profiles:` and `models:`
replace bundled entries of the same name and add new ones.
"""

from __future__ import annotations

import ipaddress
import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

# API keys shorter than this are accepted but warned about at start (easy to guess).
MIN_KEY_LENGTH = 16


def _split_list(v: Any) -> Any:
    """A list setting given as one string (environment): a JSON list, else comma-separated
    values (one value without a comma is a one-item list). Empty items are kept, so that the
    field's own check can refuse them rather than silently drop them."""
    if not isinstance(v, str):
        return v
    text = v.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a valid JSON list: {exc}") from exc
    return [item.strip() for item in text.split(",")]


def _split_paths(v: Any) -> Any:
    paths = _split_list(v)
    # Path("") is the current folder: an empty entry must not silently open it (file_roots).
    if isinstance(paths, list) and any(isinstance(p, str) and not p.strip() for p in paths):
        raise ValueError("an empty folder name in the list")
    return paths


# Every list setting uses one of these: NoDecode stops pydantic-settings from JSON-decoding the
# environment value itself (which rejects `a,b` and `a`), so _split_list sees the raw string.
EnvList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]
EnvPathList = Annotated[list[Path], NoDecode, BeforeValidator(_split_paths)]


class LocalModel(BaseModel):
    path: str  # bundled name or folder
    compute_type: str = "int8"
    device: str = "cpu"


class Profile(BaseModel):
    """A DashScope model name as served by voxscope."""

    name: str = ""
    aliases: list[str] = Field(default_factory=list)
    kind: Literal["recognition", "translation", "chat", "realtime", "file", "sync"] = "recognition"
    model: str = "whisper-base"
    sample_rates: list[int] | Literal["any"] = "any"
    languages: list[str] | None = None  # None: every language the local model knows
    hotwords: bool = True
    punctuation: Literal["always", "optional"] = "always"
    # file profiles: which result document shape ("qwen": one file_url; "paraformer": file_urls)
    file_form: Literal["qwen", "paraformer"] = "paraformer"

    def accepts_rate(self, rate: int) -> bool:
        return self.sample_rates == "any" or rate in self.sample_rates


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOXSCOPE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./voxscope-data")
    config: Path | None = None
    api_keys: EnvList = Field(default_factory=list)
    insecure: bool = False  # allow a non-loopback address without API keys
    cache_dir: Path | None = None  # where bundled models are assembled

    # engine
    cpu_threads: int = Field(0, ge=0)  # 0: CTranslate2 picks on CPU (all cores), 2 on a GPU
    # numpy's BLAS thread pool (faster-whisper's log-mel matmul; engine/threads.py): > 0 caps it,
    # 0 leaves it (one thread per core), -1: 1 thread (idle pool threads spinning were most of the
    # server's CPU on a GPU machine, and 11-23 % of it on 2 cores, for no speed).
    blas_threads: int = Field(-1, ge=-1)
    max_batch: int = 4
    batch_wait_ms: float = 5.0

    # realtime sessions
    max_sessions: int = 8  # concurrent recognition tasks; more get a Throttling error
    # Admission by measured load (service/admission.py): a new realtime stream is refused when
    # realtime finals, projected to one more stream, would take more than this share of model
    # time (<= 0: off, max_sessions only), or when finals already wait this long for the model.
    admit_max_load: float = 0.9
    admit_max_final_wait_s: float = 3.0  # the p95 target of finals
    admit_stream_cost: float = 0.08  # assumed share per stream until measured
    admit_sentence_rate: float = 0.2  # sentences/s a stream is priced at until measured
    # No speculative final ahead of the pause limit while realtime finals take this share of model
    # time (engine/load.py SPECULATE_MAX_FINAL_SHARE; >= 1: always speculate, as before); above it
    # previews also go one per batch.
    speculate_max_final_share: float = 0.5
    # True: above that share, a stream at real-time pace or slower (not sent in a burst) drops a
    # closing sentence's never-shown preview instead of promoting it to final priority
    # (engine/recognizer.py `_behind`). Off by default: the share is high at one stream on a slow
    # machine too, and there the rule left a paced Qwen realtime item with no transcription.text
    # before its completed (the flow's contract: tests/hardening/test_realtime_item_order.py).
    drop_previews_when_behind: bool = False
    # final_window short: a sentence under 4 s that no shown preview saw whole, sure to be
    # rechecked in the full window, is decoded there at once (engine/recognizer.py
    # `_recheck_certain`) instead of short + recheck. False: short, then the recheck.
    full_final_when_unpreviewed: bool = True
    load_window_s: float = 15.0  # the sliding window load is measured over
    # File windows while realtime work is about (engine/scheduler.py): one window per batch while
    # a realtime submit was seen within realtime_hold_s; a window waits for a pause in realtime
    # work (no submit for realtime_idle_s), for at most file_max_defer_s.
    realtime_hold_s: float = 5.0
    realtime_idle_s: float = 1.5
    file_max_defer_s: float = 6.0
    # File lane (engine/scheduler.py): > 0: while realtime work is about, file-task windows decode
    # on a second model replica with this many CPU threads, in its own thread at nice
    # `file_lane_nice`, beside realtime work (which then never waits for a file window; measured
    # in benchmarks/RESULTS.md: the only setting that kept a stream's delays within the QoS target,
    # at ~+120 MB peak RSS while files and streams run together); 0: one model for all (the rules
    # above).
    file_lane_threads: int = 1
    file_lane_nice: int = 10
    file_lane_batch: int = 1  # windows per decode on the lane (more: more peak memory)
    # The lane's replica (~125 MB) is dropped after this long without file windows to decode
    # (realtime work gone), and built again when file and realtime work next meet; <= 0: kept.
    # Dropped at once when file windows become the main model's (streams stopped): held, it would
    # keep them one at a time there.
    file_lane_idle_s: float = 60.0
    # CTranslate2 replicas of each model (one model object: they share its weights; a second
    # replica's buffers and a second decode at once cost ~40-60 MB of peak RSS). With 2, a second
    # thread decodes file windows and sync requests beside the first while no realtime work is
    # about (engine/scheduler.py): same text and CPU, less wall time when cores are idle; 1: one
    # decode at a time, as before (benchmarks/RESULTS.md, "Files on replicas that share weights").
    model_workers: int = 2
    # With model_workers >= 2, realtime finals the second replica takes when idle
    # (engine/scheduler.py): "rechecks" (a short-window final's full-window redo, which else
    # queues behind the main lane's finals), "finals" (any realtime final), "none".
    second_replica_realtime: Literal["rechecks", "finals", "none"] = "rechecks"
    # final_window short: when a short final's full-window recheck is asked for beside it, at
    # the sentence's close (engine/recognizer.py `_early_recheck`), so a sentence waits for the
    # longer decode, not both: "language" (its previews' language was only carried over, never
    # checked), "off" (only after the short final disagreed). RESULTS "Overload, session 10".
    early_recheck: Literal["off", "language"] = "off"
    # False: a short final in another script (Latin vs CJK) than its previews (decoded in the
    # stream's last language, never checked on the sentence) is not rechecked for disagreeing
    # with them (engine/recognizer.py `_language_switch`).
    recheck_language_switch: bool = True
    # True (with model_workers >= 2): the file lane is the second replica of the main model
    # (normal priority, one file window at a time) instead of a separate replica at
    # `file_lane_nice` (file_lane_threads is then unused).
    file_lane_shared: bool = False
    # A sentence's first preview decoded before queued finals. Off: measured on a quiet 2-core VM at
    # 4 streams it delayed finals (p50 6.5 -> 11.3 s) without bringing first partials sooner.
    first_preview_ahead: bool = False
    idle_timeout_s: float = 60.0  # no speech (no audio with heartbeat) for this long ends a task
    socket_idle_timeout_s: float = 60.0  # a connection with no task is closed after this
    heartbeat_interval_s: float = 10.0
    max_frame_bytes: int = 1 << 20
    shutdown_drain_s: float = 10.0  # on SIGTERM, running sessions may finish this long
    # Speech a sentence needs before its first preview: less shows something sooner, but on a
    # fraction of a word Whisper invents text ("you"); see benchmarks/RESULTS.md, "First partial".
    min_partial_speech_ms: int = 400
    partial_interval_s: float = 0.6
    # The window a realtime sentence's final is decoded in. "full": padded to Whisper's 30 s like
    # faster-whisper. "short": the audio plus 1 s, as previews are; a final whose first words
    # differ from its agreed preview (short windows flip first words), or that looks weak, is
    # decoded again in the full window (engine/streaming/final_guard.py). Short was as accurate
    # in total through the server (0.048 vs 0.050, session 8), passes
    # tests/quality/test_accuracy.py and, since the guard's `unheard` rule,
    # tests/hardening/test_forced_cut.py, and costs less CPU per final: the default since session 9.
    # The one final the whole suite lost with "short" in session 8 was the SDK's start race in the
    # test harness, no audio sent (tests/hardening/test_sdk_start_race.py), and a full-window
    # recheck that comes back empty no longer drops the short window's words (tests/engine/
    # test_lost_finals.py; benchmarks/RESULTS.md, "4-stream finals and the short default").
    final_window: Literal["full", "short"] = "short"
    max_task_audio_s: float = 4 * 3600.0

    # storage and file tasks
    database_url: str | None = None  # None: SQLite in data_dir (PostgreSQL URL for many machines)
    queue_url: str | None = None  # None: SQLite queue in data_dir; redis://host:port/db to share
    workers: int = 1  # in-process file-task workers of `serve` (0: only separate `voxscope worker`s)
    public_url: str | None = None  # base of links handed out (transcription_url, upload host)
    # Host names served without API keys (besides loopback) and trusted for links; "*": any
    allowed_hosts: EnvList = Field(default_factory=list)
    secret_key: str | None = None  # signs result links and upload policies (generated if unset)
    result_ttl_s: float = 24 * 3600.0  # how long a transcription_url stays valid
    fetch_timeout_s: float = 300.0
    fetch_allow_private: bool = False  # allow file_url to point at loopback/private addresses
    file_roots: EnvPathList = Field(default_factory=list)  # folders file:// input may read from
    task_lease_s: float = 30.0  # a running task whose worker stops renewing this long is resumed
    session_lease_s: float = 30.0  # Redis limits: a dead server's key sessions free after this
    checkpoint_s: float = 60.0  # persist file-task progress after at least this much audio
    max_async_bytes: int = 2 << 30
    max_async_seconds: float = 12 * 3600.0
    max_sync_bytes: int = 10 << 20
    max_sync_seconds: float = 300.0
    max_upload_bytes: int = 100 << 20
    upload_ttl_s: float = 48 * 3600.0  # files uploaded through the SDK's upload flow expire
    max_vocabularies: int = 10  # hot-word vocabularies per API key

    profiles: dict[str, Profile] = Field(default_factory=dict)
    models: dict[str, LocalModel] = Field(default_factory=dict)

    @field_validator("api_keys")
    @classmethod
    def _no_blank_keys(cls, keys: list[str]) -> list[str]:
        # An empty key (an unset shell variable, `[""]`) would otherwise count as "keys
        # configured" while matching requests that carry no key at all.
        for i, key in enumerate(keys, 1):
            if not key.strip():
                raise ValueError(f"API key #{i} of {len(keys)} is empty or whitespace; give real "
                                 "keys, or no keys at all for open local access")
            if key != key.strip():
                raise ValueError(f"API key #{i} of {len(keys)} starts or ends with whitespace")
        return keys

    def short_keys(self) -> list[int]:
        """1-based positions of configured keys shorter than MIN_KEY_LENGTH."""
        return [i for i, k in enumerate(self.api_keys, 1) if len(k) < MIN_KEY_LENGTH]

    # -- derived ------------------------------------------------------------------------------
    def stream_options(self) -> dict[str, Any]:
        """The server-wide settings of every realtime recognizer (RecognizerConfig fields), one
        place for the protocols that build one."""
        return {"partial_interval_s": self.partial_interval_s,
                "final_full_window": self.final_window == "full",
                "min_partial_speech_ms": self.min_partial_speech_ms}

    @property
    def auth_enabled(self) -> bool:
        # config keys only; whether a server requires keys (database keys too) is KeyRing.enabled
        return bool(self.api_keys)

    def profile(self, name: str) -> Profile | None:
        prof = self.profiles.get(name)
        if prof is not None:
            return prof
        for p in self.profiles.values():
            if name in p.aliases:
                return p
        return None

    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'voxscope.db').resolve()}"

    def queue_target(self) -> str:
        return self.queue_url or f"sqlite:///{(self.data_dir / 'queue.db').resolve()}"

    def loopback_only(self) -> bool:
        if self.host in ("localhost",):
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def _bundled_profiles() -> dict[str, Any]:
    text = resources.files("voxscope").joinpath("profiles.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


class ConfigError(ValueError):
    pass


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from defaults, the config file, the environment and explicit overrides."""
    base = _bundled_profiles()
    file_data: dict[str, Any] = {}
    if config_file is not None:
        try:
            file_data = yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
        if not isinstance(file_data, dict):
            raise ConfigError(f"config file {config_file} must hold a mapping")
    server = dict(file_data.get("server") or {})
    if "api_keys" in file_data and "api_keys" not in server:
        server["api_keys"] = file_data["api_keys"]
    models = {**(base.get("models") or {}), **(file_data.get("models") or {})}
    profiles = {**(base.get("profiles") or {}), **(file_data.get("profiles") or {})}
    # A copy per entry: YAML aliases can make two profiles one dict, and each needs its own name.
    profiles = {name: {"name": name, **prof} if isinstance(prof, dict) else prof
                for name, prof in profiles.items()}
    # Environment beats the file: only use file values for fields the environment does not set.
    try:
        env_settings = Settings()
    except (ValidationError, SettingsError) as exc:
        raise ConfigError(f"invalid VOXSCOPE_* environment setting: {_describe(exc)}") from exc
    explicit_env = env_settings.model_fields_set
    values: dict[str, Any] = {k: v for k, v in server.items() if k not in explicit_env}
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["profiles"] = profiles
    values["models"] = models
    if config_file is not None:
        values["config"] = Path(config_file)
    merged = env_settings.model_dump(exclude_unset=True)
    merged.update(values)
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(f"invalid setting: {_describe(exc)}") from exc


def _describe(exc: Exception) -> str:
    """One line per problem: `field: message` (pydantic's own text is long and nested)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: "
                         f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
    return str(exc)

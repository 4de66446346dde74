"""Issue 9 items 1-2: list settings from the environment, and empty API keys.

Item 1: `VOXSCOPE_API_KEYS` / `VOXSCOPE_FILE_ROOTS` given comma-separated, as one value, or as a
JSON list start a real server whose keys and roots take effect (a key works, no key or a wrong
key gets 401; a file:// URL inside a root is accepted, one outside is refused).
Item 2: an empty or whitespace key, from the CLI, the config file or the environment, stops
`voxscope serve` at start with exit code 2 and a clear message; short keys are warned about.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import FAST_ENV
from tests.support import AUDIO_DIR, ServerProcess, clip, free_port

QWEN = "qwen3-asr-flash-filetrans"
INSIDE = (AUDIO_DIR / clip("en_ldc93s1")["path"]).resolve()
OTHER_ROOT = Path(tempfile.mkdtemp(prefix="voxscope-root-"))
KA, KB = "ka-0123456789abcdef", "kb-0123456789abcdef"

# form -> (VOXSCOPE_API_KEYS, VOXSCOPE_FILE_ROOTS, keys that must work)
FORMS = {
    "comma": (f"{KA}, {KB}", f"{OTHER_ROOT},{AUDIO_DIR.resolve()}", [KA, KB]),
    "single": ("kq7x", str(AUDIO_DIR.resolve()), ["kq7x"]),
    "json": (json.dumps([KA, KB]), json.dumps([str(AUDIO_DIR.resolve())]), [KA, KB]),
}


@pytest.fixture(scope="module", params=list(FORMS))
def env_server(request):
    keys, roots, good = FORMS[request.param]
    # workers: 0 - tasks are only accepted (or refused), never run: this module tests settings.
    srv = ServerProcess(env={**FAST_ENV, "VOXSCOPE_API_KEYS": keys, "VOXSCOPE_FILE_ROOTS": roots},
                        config={"server": {"workers": 0}}).start()
    yield srv, good
    srv.stop()


def _task_lookup(srv: ServerProcess, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}".strip()} if key is not None else {}
    return httpx.get(srv.http + "/api/v1/tasks/no-such-task", headers=headers, timeout=30)


def _submit(srv: ServerProcess, key: str, url: str) -> httpx.Response:
    return httpx.post(srv.http + "/api/v1/services/audio/asr/transcription", timeout=30,
                      headers={"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable",
                               "Content-Type": "application/json"},
                      json={"model": QWEN, "input": {"file_url": url}, "parameters": {}})


@pytest.mark.timeout(180)
def test_env_list_keys_take_effect(env_server):
    srv, good = env_server
    for key in good:
        resp = _task_lookup(srv, key)
        assert resp.status_code == 200, (key, resp.status_code, resp.text)
    for key in (None, "wrong-key-0123456789", ""):
        resp = _task_lookup(srv, key)
        assert resp.status_code == 401, (key, resp.status_code, resp.text)
        assert resp.json()["code"] == "InvalidApiKey"


@pytest.mark.timeout(180)
def test_env_list_file_roots_take_effect(env_server):
    srv, good = env_server
    inside = _submit(srv, good[0], f"file://{INSIDE}")
    assert inside.status_code == 200, inside.text
    assert inside.json()["output"]["task_id"]
    outside = _submit(srv, good[0], "file:///etc/passwd")
    assert outside.status_code == 400, outside.text
    assert "file_roots" in outside.json()["message"]


@pytest.mark.timeout(180)
def test_short_keys_are_warned_about(env_server):
    srv, good = env_server
    log = srv.log()
    if any(len(k) < 16 for k in good):
        assert "shorter than 16 characters" in log, log
    else:
        assert "shorter than" not in log, log
    for key in good:  # the warning never prints a key
        assert key not in log


# -- item 2: empty keys are refused at start ------------------------------------------------------
def _serve_exit(args: list[str], env: dict[str, str], config: dict | None = None,
                timeout: float = 120) -> tuple[int | None, str]:
    """Run `voxscope serve`; (exit code, output). A server that starts instead of refusing is
    stopped after `timeout` and reported with exit code None."""
    work = Path(tempfile.mkdtemp(prefix="voxscope-badkey-"))
    cmd = [sys.executable, "-m", "voxscope.cli", "serve", "--port", str(free_port()),
           "--data-dir", str(work / "data"), "--log-level", "warning", *args]
    if config is not None:
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        cmd += ["--config", str(work / "config.yaml")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXSCOPE_")} | env
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return None, out.decode(errors="replace")


EMPTY_KEY_CASES = {
    "cli_empty_public_host": (["--host", "0.0.0.0", "--api-key", ""], {}, None),
    "cli_whitespace": (["--api-key", "   "], {}, None),
    "cli_one_good_one_empty": (["--api-key", "k-0123456789abcdef", "--api-key", ""], {}, None),
    "config_empty": ([], {}, {"api_keys": [""]}),
    "config_server_section_blank": ([], {}, {"server": {"api_keys": [" "]}}),
    "env_json_empty": ([], {"VOXSCOPE_API_KEYS": '[""]'}, None),
    "env_empty_string": ([], {"VOXSCOPE_API_KEYS": ""}, None),
    "env_trailing_comma": ([], {"VOXSCOPE_API_KEYS": "k-0123456789abcdef,"}, None),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", list(EMPTY_KEY_CASES))
def test_empty_api_key_refused_at_start(case):
    args, env, config = EMPTY_KEY_CASES[case]
    code, out = _serve_exit(args, env, config)
    assert code == 2, (code, out[-3000:])
    assert "API key" in out and "empty" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert "API keys required" not in out, out[-3000:]


@pytest.mark.timeout(300)
def test_bad_list_env_value_is_a_clear_error():
    """A malformed JSON list or an empty folder in VOXSCOPE_FILE_ROOTS: exit 2, no traceback."""
    for env in ({"VOXSCOPE_FILE_ROOTS": "[/a"}, {"VOXSCOPE_FILE_ROOTS": ""}):
        code, out = _serve_exit([], env)
        assert code == 2, (env, code, out[-3000:])
        assert "file_roots" in out and "Traceback" not in out, out[-3000:]


def test_every_list_setting_reads_comma_single_and_json(monkeypatch):
    """Every list field of Settings (not only the two probed from outside) takes the three forms
    from the environment: a list setting added later without `EnvList` fails here."""
    from voxscope.config import Settings

    list_fields = [name for name, f in Settings.model_fields.items()
                   if getattr(f.annotation, "__origin__", None) is list]
    assert {"api_keys", "file_roots", "allowed_hosts"} <= set(list_fields)
    for name in list_fields:
        env = f"VOXSCOPE_{name.upper()}"
        for raw, want in (("/a,/b", ["/a", "/b"]), ("/a", ["/a"]), ('["/a", "/b"]', ["/a", "/b"])):
            monkeypatch.setenv(env, raw)
            got = [str(v) for v in getattr(Settings(), name)]
            assert got == want, (name, raw, got)
        monkeypatch.delenv(env)


def test_aliased_profiles_keep_their_own_names(tmp_path):
    """A config whose profiles share one mapping through a YAML alias (as `yaml.safe_dump` writes
    a shared dict): each profile keeps its own name, so tasks are stored under the right model."""
    import yaml

    from voxscope.config import load_settings

    shared = {"model": "whisper-base", "kind": "file"}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"profiles": {"vx-one": shared, "vx-two": shared}}))
    assert "&id" in cfg.read_text()  # the premise: one mapping, aliased
    profiles = load_settings(cfg).profiles
    assert profiles["vx-one"].name == "vx-one" and profiles["vx-two"].name == "vx-two"

"""File throughput: voxscope's file paths against plain and batched faster-whisper, same run.

Builds one long file per language from the real clips in shared/audio (each clip followed by a
`--pause` of silence, repeated until the file is at least `--minutes` long: many short utterances,
like dialogue), then runs each system on it in its own child process (so peak RSS and CPU time are
its own), one after another, all on the same model files and `--threads` CPU threads:

- `fw_seq`: plain faster-whisper, `WhisperModel.transcribe(audio, beam_size=5)`;
- `fw_batched`: faster-whisper's `BatchedInferencePipeline(batch_size=8)`;
- `vox_cli`: the `voxscope transcribe` path (`engine.offline.transcribe_chunks` in-process, with
  the options the command uses);
- `vox_task`: an async file task (`QwenTranscription.async_call` + `wait` through the official
  SDK) on a real `voxscope serve`, the file served over HTTP (its peak RSS and CPU time are the
  server's, sampled while the task ran).

Prints per system: wall seconds, RTF, CPU seconds, peak RSS, WER (en) / CER (zh), and the ratios
of each voxscope path to `fw_seq` and `fw_batched` (wall and CPU). On a shared machine wall times
are noisy: same-run ratios and CPU seconds are what to compare; use `--repeat` and a quiet machine.

    python benchmarks/bench_file_throughput.py --minutes 5 --langs en zh --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.device import add_device_args, compute_type, models_config  # noqa: E402
from benchmarks.settings_args import parse_settings  # noqa: E402
from tests.support import clip_pcm, error_rate, manifest, wav_bytes  # noqa: E402

SYSTEMS = ("fw_seq", "fw_batched", "vox_cli", "vox_task")


def build(lang: str, minutes: float, pause_s: float) -> tuple[bytes, str, float]:
    """Real clips of `lang`, each followed by `pause_s` of silence, repeated to >= `minutes`."""
    ids = [c["id"] for c in manifest() if c["lang"] == lang]
    gap = np.zeros(int(pause_s * 16000), dtype="<i2")
    parts, refs, total = [gap], [], pause_s
    while total < minutes * 60:
        for cid in ids:
            pcm = np.frombuffer(clip_pcm(cid), "<i2")
            parts += [pcm, gap]
            refs.append(next(c["reference"] for c in manifest() if c["id"] == cid))
            total += pcm.size / 16000 + pause_s
    return np.concatenate(parts).tobytes(), " ".join(refs), total


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- child: one system on one file ---------------------------------------------------------------
def child(system: str, wav: Path, threads: int, batch: int, args: argparse.Namespace) -> dict:
    """Run one system in this process; returns wall, CPU seconds, peak RSS and the text."""
    from voxscope.audio import iter_file_chunks
    from voxscope.engine.model_store import ModelStore

    if system.startswith("fw_"):
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        model = WhisperModel(str(ModelStore().resolve("whisper-base")), device=args.device,
                             compute_type=compute_type(args), cpu_threads=threads)
        audio = np.concatenate(list(iter_file_chunks(wav)))
        t, c = time.monotonic(), _cpu_s()
        if system == "fw_seq":
            segments = model.transcribe(audio, beam_size=5)[0]
        else:
            segments = BatchedInferencePipeline(model).transcribe(audio, beam_size=5,
                                                                  batch_size=batch)[0]
        texts = [s.text.strip() for s in segments]
    else:
        from voxscope.config import load_settings
        from voxscope.engine.hub import Engine
        from voxscope.engine.offline import OfflineOptions, transcribe_chunks

        cfg = Path(tempfile.mkdtemp(prefix="voxscope-bench-")) / "config.yaml"
        cfg.write_text(json.dumps({"models": models_config(args)}))  # JSON is YAML
        engine = Engine(load_settings(cfg, cpu_threads=threads, max_batch=args.max_batch,
                                      **parse_settings(args.set)))
        sched = engine.scheduler("whisper-base")
        t, c = time.monotonic(), _cpu_s()
        opts = OfflineOptions(language=None)  # as `voxscope transcribe` (file tasks: conditioned)
        texts = [s.text for s in transcribe_chunks(iter_file_chunks(wav), sched, engine.vad, opts)]
        engine.close()
    wall, cpu = time.monotonic() - t, _cpu_s() - c
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak, "text": " ".join(texts)}


def run_child(system: str, wav: Path, threads: int, batch: int, args: argparse.Namespace) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", system, str(wav),
                          "--threads", str(threads), "--batch", str(batch),
                          "--device", args.device, "--compute-type", compute_type(args),
                          "--max-batch", str(args.max_batch),
                          *[x for kv in args.set for x in ("--set", kv)]],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:  # one failing system must not hide the others' numbers
        raise RuntimeError(f"{system} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_task(srv, base: str, name: str) -> dict:
    """An async file task on the running server: wall, server CPU seconds and peak RSS."""
    import httpx
    from dashscope.audio.qwen_asr import QwenTranscription

    pid = srv.proc.pid
    peak = _rss_mb(pid)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.2):
            peak = max(peak, _rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t, c = time.monotonic(), _proc_cpu_s(pid)
    sub = QwenTranscription.async_call(model="qwen3-asr-flash-filetrans", file_url=f"{base}/{name}")
    done = QwenTranscription.wait(task=sub.output.task_id)
    wall, cpu = time.monotonic() - t, _proc_cpu_s(pid) - c
    stop.set()
    sampler.join()
    assert done.output["task_status"] == "SUCCEEDED", done
    doc = httpx.get(done.output["result"]["transcription_url"], timeout=60).json()
    # The SDK's wait polls every 1-5 s: the server's own submit -> end time is the task's wall
    # time without that granularity (its clock, same machine).
    from datetime import datetime

    stamps = [datetime.strptime(done.output[k], "%Y-%m-%d %H:%M:%S.%f")
              for k in ("submit_time", "end_time")]
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak,
            "server_wall_s": (stamps[1] - stamps[0]).total_seconds(),
            "text": doc["transcripts"][0]["text"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--pause", type=float, default=1.0, help="seconds of silence after each clip")
    ap.add_argument("--langs", nargs="*", default=["en", "zh"])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--batch", type=int, default=8, help="BatchedInferencePipeline batch size")
    ap.add_argument("--systems", nargs="*", default=list(SYSTEMS), choices=SYSTEMS)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--max-batch", type=int, default=4, help="voxscope's max_batch setting")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a voxscope server setting for vox_cli and vox_task (repeatable)")
    ap.add_argument("--child", nargs=2, metavar=("SYSTEM", "WAV"), help=argparse.SUPPRESS)
    add_device_args(ap)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.threads, args.batch,
                               args)))
        return

    from benchmarks.bench_file_tasks import serve_folder
    from tests.support import ServerProcess, sdk_at

    folder = Path(tempfile.mkdtemp(prefix="voxscope-bench-throughput-"))
    httpd, base = serve_folder(folder)
    srv = None
    if "vox_task" in args.systems:
        srv = ServerProcess(config={"server": {"fetch_allow_private": True,
                                               "cpu_threads": args.threads,
                                               "max_batch": args.max_batch,
                                               **parse_settings(args.set)},
                                    "models": models_config(args)}).start(timeout=300)
    load = os.getloadavg()
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.platform()}; "
          f"threads {args.threads}; {args.device} {compute_type(args)}; "
          f"load avg at start {load[0]:.1f}; settings {parse_settings(args.set)}")
    try:
        for lang in args.langs:
            pcm, reference, seconds = build(lang, args.minutes, args.pause)
            name = f"throughput_{lang}.wav"
            (folder / name).write_bytes(wav_bytes(pcm))
            for rep in range(args.repeat):
                rows: dict[str, dict] = {}
                for system in args.systems:
                    if system == "vox_task":
                        assert srv is not None
                        with sdk_at(srv):
                            r = run_task(srv, base, name)
                    else:
                        try:
                            r = run_child(system, folder / name, args.threads, args.batch, args)
                        except RuntimeError as exc:
                            print(exc, flush=True)
                            continue
                    rows[system] = {"wall_s": round(r["wall_s"], 1),
                                    "rtf": round(r["wall_s"] / seconds, 3),
                                    "cpu_s": round(r["cpu_s"], 1),
                                    "peak_rss_mb": round(r["peak_rss_mb"]),
                                    "err": round(error_rate(lang, reference, r["text"]), 4)}
                    if "server_wall_s" in r:
                        rows[system]["server_wall_s"] = round(r["server_wall_s"], 1)
                ratios = {}
                for vox in ("vox_cli", "vox_task"):
                    for base_sys in ("fw_seq", "fw_batched"):
                        if vox in rows and base_sys in rows:
                            a, b = rows[vox], rows[base_sys]
                            ratios[f"{vox}/{base_sys}"] = {
                                "wall": round(a["wall_s"] / b["wall_s"], 2),
                                **({"server_wall": round(a["server_wall_s"] / b["wall_s"], 2)}
                                   if "server_wall_s" in a else {}),
                                "cpu": round(a["cpu_s"] / b["cpu_s"], 2),
                                "err_points": round(100 * (a["err"] - b["err"]), 2)}
                print(json.dumps({"lang": lang, "audio_s": round(seconds, 1), "run": rep + 1,
                                  "load_avg_1m": round(os.getloadavg()[0], 1),
                                  "systems": rows, "ratios": ratios}, indent=1))
            (folder / name).unlink()
    finally:
        if srv is not None:
            srv.stop()
        httpd.shutdown()


if __name__ == "__main__":
    main()

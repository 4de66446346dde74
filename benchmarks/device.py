"""Where a benchmark runs the model: `--device`/`--compute-type` for every system in one run.

The same choice goes to plain faster-whisper (the baseline) and to voxscope (a `models:` entry
replacing the bundled whisper-base one), so a GPU run compares like with like.
"""

from __future__ import annotations

import argparse


def add_device_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--device", default="cpu", help="cpu or cuda (CTranslate2 device)")
    ap.add_argument("--compute-type", default=None,
                    help="CTranslate2 compute type (default: int8 on cpu, float16 on cuda)")


def compute_type(args: argparse.Namespace) -> str:
    return args.compute_type or ("int8" if args.device == "cpu" else "float16")


def models_config(args: argparse.Namespace) -> dict:
    """The `models:` section that puts voxscope's whisper-base on the chosen device."""
    return {"whisper-base": {"path": "whisper-base", "device": args.device,
                             "compute_type": compute_type(args)}}

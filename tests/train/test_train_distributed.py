"""Two processes (torchrun, CPU, gloo): grad-accum from the world size, sharded val generation.

The GPU launch goes through ``accelerate launch`` with the shipped DeepSpeed /
FSDP configs, which cannot run here; this runs the same code path that
matters for correctness on any backend: the world size in the batch-64
derivation, each rank generating its share of the val tasks in lock-step
(``synced_gpus``), and the counts summed across ranks.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import yaml

from behaviorsft.train.trainer import BEST_FILE, CONFIG_FILE

pytestmark = pytest.mark.slow

LAUNCHER = """
import typer
from behaviorsft.cli_train import register

app = typer.Typer()
register(app)


@app.callback()
def main() -> None:
    "Test launcher."


app()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_process_training(tiny_models, small_bench, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this Python")
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER, encoding="utf-8")
    out = tmp_path / "out"
    settings = {
        "per_device_train_batch_size": 2,
        "effective_batch_size": 8,
        "max_steps": 2,
        "eval_steps": 2,
        "save_steps": 2,
        "val_max_new_tokens": 4,
        "max_length": 512,
        "gradient_checkpointing": "false",
        "learning_rate": "1e-2",
        "ddp_backend": "gloo",  # CPU; on GPUs accelerate/torchrun pick NCCL
        "use_cpu": "true",
        "report_to": "none",
    }
    cmd = [
        torchrun,
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        str(script),
        "train",
    ]
    cmd += ["--mode", "behavior", "--model", str(tiny_models["untied"])]
    cmd += ["--bench", str(small_bench), "--out", str(out)]
    for key, value in settings.items():
        cmd += ["--set", f"{key}={value}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    resolved = yaml.safe_load((out / CONFIG_FILE).read_text())["resolved"]
    assert resolved["world_size"] == 2
    assert resolved["gradient_accumulation_steps"] == 2  # 8 / (2 per device x 2 processes)
    best = json.loads((out / BEST_FILE).read_text())
    n_val = sum(
        1 for line in (small_bench / "tasks.jsonl").read_text().splitlines() if '"val"' in line
    )
    assert best["history"][0]["eval_val_n"] == n_val  # both shards counted once
    shards = sorted((out / "val_replies").glob("val_replies_step2_rank*.jsonl"))
    assert [p.name for p in shards] == [
        "val_replies_step2_rank0.jsonl",
        "val_replies_step2_rank1.jsonl",
    ]
    ids = [json.loads(line)["id"] for p in shards for line in p.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == n_val  # disjoint shards covering the split
    assert best["best_checkpoint"] == "checkpoint-2"

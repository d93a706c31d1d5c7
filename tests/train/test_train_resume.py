"""--resume after a kill: a run SIGKILLed right after a checkpoint continues to the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from behaviorsft.train.config import load_config
from behaviorsft.train.trainer import LOG_FILE, train

pytestmark = pytest.mark.slow

SETTINGS = {
    "max_steps": 4,
    "per_device_train_batch_size": 4,
    "effective_batch_size": 4,
    "eval_steps": 2,
    "logging_steps": 1,
    "learning_rate": 1e-2,
    "max_length": 512,
    "gradient_checkpointing": False,
    "val_max_new_tokens": 4,
    "val_limit": 4,
    "report_to": "none",
}

# Runs train() and stalls inside on_save, after checkpoint-2 is fully written,
# so the test can kill it at a known point instead of racing a fast run.
SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from transformers import TrainerCallback
    from behaviorsft.train.config import load_config
    from behaviorsft.train.trainer import train

    class Stall(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            with open(sys.argv[2], "w") as fh:
                fh.write(str(state.global_step))
            time.sleep(600)

    train(load_config(None, json.loads(sys.argv[1])), callbacks=[Stall()], log=lambda s: None)
    """
)


def test_resume_after_sigkill(tiny_models, small_bench, tmp_path):
    out = tmp_path / "run"
    settings = {
        **SETTINGS,
        "model": str(tiny_models["tied"]),
        "bench": str(small_bench),
        "output_dir": str(out),
    }
    marker = tmp_path / "saved"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, json.dumps(settings), str(marker)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"training exited early: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint within 240 s")
            time.sleep(0.2)
        assert marker.read_text() == "2"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (out / "checkpoint-2" / "trainer_state.json").exists()
    assert not (out / "checkpoint-4").exists()
    assert not (out / "adapter_config.json").exists()  # the run never finished

    cfg = load_config(None, settings)
    with pytest.raises(RuntimeError, match="pass --resume"):
        train(cfg, log=lambda s: None)  # refuses to start over on top of checkpoints
    result = train(cfg, resume=True, log=lambda s: None)

    assert result.global_step == 4
    assert (out / "checkpoint-4").exists() and (out / "adapter_config.json").exists()
    # The history from before the kill came back with the checkpoint: both
    # evaluations are there although the second process only ran steps 3-4.
    assert [h["step"] for h in result.val_history] == [2.0, 4.0]
    logged = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    steps = [row["step"] for row in logged if "loss" in row and "train_runtime" not in row]
    assert steps == [1, 2, 3, 4]  # no step trained twice, none skipped

"""Benchmark: torch thread settings for the demo, on one short training step of SmolLM2.

Each setting runs in a fresh process (thread pools are fixed at first use) and
does LoRA forward+backward on a fixed batch of random token ids a few times,
then prints wall time, user and system CPU seconds per step. System time is
what threads spinning against each other cost: the old demo spent 9 of its 29
CPU-minutes there.

    python benchmarks/bench_threads.py                    # SmolLM2 (prepared), 512 tokens
    python benchmarks/bench_threads.py --tokens 256 --reps 3
    python benchmarks/bench_threads.py --model PATH       # any causal LM folder

Settings: ``default`` (torch's own choice: as many intra-op and inter-op
threads as cores), ``intra=N inter=1`` for N in 1..cores, and the same with
``passive`` OpenMP waiting (``OMP_WAIT_POLICY=PASSIVE``: a thread that waits
at a barrier sleeps instead of spinning; what ``behaviorsft demo`` sets).
Run it on an idle machine and on a busy one: with other processes on the
cores, spinning threads wait for each other's time slices. The script prints
the load average before and after; ``--only`` picks settings by name.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

STEP = """
import json, resource, sys, time
import torch
intra, inter, model_path, tokens, reps = sys.argv[1:6]
if intra != "default":
    torch.set_num_threads(int(intra))
    torch.set_num_interop_threads(int(inter))
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
model.train()
ids = torch.randint(0, 1000, (1, int(tokens)), generator=torch.Generator().manual_seed(0))
def step():
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    model.zero_grad(set_to_none=True)
step()  # warm-up, not timed
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range(int(reps)):
    step()
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
n = int(reps)
print(json.dumps({
    "threads": [torch.get_num_threads(), torch.get_num_interop_threads()],
    "wall_s": (t1 - t0) / n,
    "user_s": (r1.ru_utime - r0.ru_utime) / n,
    "sys_s": (r1.ru_stime - r0.ru_stime) / n,
}))
"""


def _default_model() -> str:
    from behaviorsft.models.smollm2 import prepare

    return str(prepare())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="causal LM folder (default: prepared SmolLM2)")
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--only", nargs="*", default=None, help="settings to run, e.g. 1 2 2-passive default"
    )
    args = ap.parse_args()
    model = args.model or _default_model()
    cores = os.cpu_count() or 1
    settings = [("default", "default", False)]
    settings += [(str(n), "1", passive) for passive in (False, True) for n in range(1, cores + 1)]
    if args.only is not None:
        keep = set(args.only)
        settings = [s for s in settings if (s[0] + ("-passive" if s[2] else "")) in keep]
    print(f"{cores} cores; load average before: {os.getloadavg()}")
    print(f"LoRA forward+backward, {args.tokens} tokens, mean of {args.reps} steps")
    print(f"{'setting':<30} {'wall s':>8} {'user s':>8} {'sys s':>8}")
    base_env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    base_env.pop("OMP_NUM_THREADS", None)
    base_env.pop("OMP_WAIT_POLICY", None)
    for intra, inter, passive in settings:
        env = {**base_env, "OMP_WAIT_POLICY": "PASSIVE"} if passive else base_env
        res = subprocess.run(
            [sys.executable, "-c", STEP, intra, inter, model, str(args.tokens), str(args.reps)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        row = json.loads(res.stdout.strip().splitlines()[-1])
        name = "default" if intra == "default" else f"intra={intra} inter=1"
        name += " passive" if passive else ""
        name += f" ({row['threads'][0]}/{row['threads'][1]})"
        print(f"{name:<30} {row['wall_s']:8.2f} {row['user_s']:8.2f} {row['sys_s']:8.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

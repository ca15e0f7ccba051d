"""Data-parallel training with torchrun: 2 CPU processes (gloo) on a few steps."""
import csv
import json
import os
import socket
import subprocess
import sys

import pytest

from .test_cli import settings_args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def first_row(run_dir):
    with open(run_dir / "losses.csv", newline="") as handle:
        return next(csv.DictReader(handle))


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_with_the_global_batch(domain_data, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MDUIT_DEBUG="1")
    common = ["--data", str(domain_data), "--max-steps", "2", "--no-progress", "--num-workers", "0",
              "--device", "cpu"]
    ddp = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "mduit_loc.cli", "train", *common,
           "--out", str(tmp_path / "ddp"), *settings_args(batch_size=2, in_batch_negatives=False)]
    # (in-batch negatives come from each rank's own batch: only without them are the losses identical)
    single = [sys.executable, "-m", "mduit_loc.cli", "train", *common, "--out", str(tmp_path / "single"),
              *settings_args(batch_size=4, in_batch_negatives=False)]
    for command in (ddp, single):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
    meta = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert meta["training"]["world_size"] == 2 and meta["training"]["ranks_in_sync"] is True
    # Step 1 sees the same 4 samples (2 per rank) with the same initial weights: same losses.
    ddp_row, single_row = first_row(tmp_path / "ddp"), first_row(tmp_path / "single")
    for name in ("rec_self", "rec_cycle", "nce", "con_content", "con_appearance", "adv_image", "loss_d"):
        assert float(ddp_row[name]) == pytest.approx(float(single_row[name]), rel=1e-3, abs=1e-5), name

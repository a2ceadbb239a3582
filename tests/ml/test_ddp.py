"""Distributed training: two gloo processes on the CPU through torchrun."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from studio.core.project import Project
from studio.ml.train.trainer import LAST, load_checkpoint
from tests.ml.conftest import IMAGE_SIZE, REPO, TINY


@pytest.mark.slow
def test_ddp_two_processes_gloo(demo_dir, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"  # two ranks on two cores
    # The real command line, as a user types it under torchrun. The tiny model ignores
    # the default weights, but they make the first epoch run with a frozen backbone, so
    # DDP re-wraps the model when it thaws.
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "studio", "train", str(demo_dir), "--model", TINY, "--epochs", "2",
        "--batch-size", "2", "--image-size", str(IMAGE_SIZE), "--device", "cpu",
        "--workers", "0",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "finished (completed) after 2 epochs" in proc.stdout
    assert proc.stdout.count("finished") == 1  # printed by rank 0 only

    with Project.open(demo_dir) as p:
        runs = p.runs()
        assert len(runs) == 1  # rank 1 did not create a run of its own
        run = runs[0]
        assert run.status == "finished" and run.epoch == 2 and run.config["pid"]
        assert run.best_metric_name == "bbox/AP"
        iters = [r for r in p.metrics(run.id, "iter") if r[3] == "loss"]
        epoch_rows = p.metrics(run.id, "epoch")
    ckpt = load_checkpoint(run.dir / LAST)
    # 10 train images, 2 ranks, 2 per batch: 3 steps per epoch on each rank.
    assert ckpt["iteration"] == 6 and len(iters) == 6
    assert {r[1] for r in epoch_rows} == {0, 1} and any(r[3] == "bbox/AP" for r in epoch_rows)
    assert not any(k.startswith("module.") for k in ckpt["model"])  # saved unwrapped
    assert ckpt["config"]["freeze_epochs"] is None  # planned by the schedule

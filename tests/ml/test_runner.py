"""Training in a spawned process: stop and resume, SIGKILL and reconcile, crashes; and the
command functions the CLI calls."""

from __future__ import annotations

import json
import os
from argparse import Namespace

import pytest
import torch

from studio.core.errors import StudioError
from studio.core.kinds import RunStatus
from studio.core.project import Project
from studio.ml import cli as commands
from studio.ml.run.process import (
    INTERRUPTED,
    TrainingProcess,
    create_run,
    execute_run,
    reconcile_runs,
    write_pid_file,
)
from studio.ml.train.messages import (
    CheckpointSaved,
    EpochMetrics,
    Failed,
    Finished,
    Iteration,
    Started,
    Stopped,
)
from studio.ml.train.trainer import LAST, load_checkpoint
from tests.ml.conftest import BROKEN, TINY, tiny_config

TIMEOUT = 240  # seconds; generous, the CI machine may be busy


def test_stop_via_runner_then_resume_continues(project):
    run = create_run(project, tiny_config(epochs=2))
    tp = TrainingProcess(project.path, run.id)
    tp.start()
    try:
        msgs = []
        for m in tp.messages(timeout=TIMEOUT):
            msgs.append(m)
            if isinstance(m, Iteration) and m.epoch == 1:
                tp.request_stop()
        stopped = tp.finished
    finally:
        tp.close()
    assert isinstance(stopped, Stopped), stopped
    assert stopped.epoch >= 1
    assert project.run(run.id).status == "stopped"
    ckpt = load_checkpoint(run.dir / LAST)
    assert (ckpt["epoch"], ckpt["iteration"]) == (stopped.epoch, stopped.iteration)
    assert any(isinstance(m, CheckpointSaved) for m in msgs)
    assert [r for r in project.metrics(run.id, "iter") if r[3] == "loss"]  # recorded

    tp = TrainingProcess(project.path, run.id, resume=True)
    tp.start()
    try:
        resumed = list(tp.messages(timeout=TIMEOUT))
    finally:
        tp.close()
    started = next(m for m in resumed if isinstance(m, Started))
    assert (started.epoch, started.iteration) == (stopped.epoch, stopped.iteration)
    first_it = next(m for m in resumed if isinstance(m, Iteration))
    assert first_it.iteration == stopped.iteration + 1
    assert isinstance(resumed[-1], Finished), resumed[-1]
    assert resumed[-1].epoch == 2
    rec = project.run(run.id)
    assert rec.status == "finished" and rec.epoch == 2
    assert project.current_model() == run.id
    epochs = sorted({r[1] for r in project.metrics(run.id, "epoch")})
    assert epochs == [0, 1]


def test_sigkill_then_reconcile_and_resume(project):
    run = create_run(project, tiny_config(epochs=2))
    tp = TrainingProcess(project.path, run.id)
    tp.start()
    try:
        for m in tp.messages(timeout=TIMEOUT):
            if isinstance(m, Iteration) and m.epoch == 1:  # epoch 0's checkpoint is written
                tp.kill()  # SIGKILL: no cleanup at all in the child
                break
        tp._process.join(30)
        assert tp.exitcode == -9
        # Nobody trains it any more, but the database still says so ...
        assert project.run(run.id).status == "running"
        # ... until reconcile_runs looks at the recorded pid.
        assert reconcile_runs(project) == [run.id]
        rec = project.run(run.id)
        assert rec.status == "failed" and rec.error == INTERRUPTED
        # The parent is told too, and does not hang.
        final = tp.wait(timeout=60)
        assert isinstance(final, Failed) and "died unexpectedly" in final.error
    finally:
        tp.close()

    saved = load_checkpoint(run.dir / LAST)
    assert saved["epoch"] >= 1
    msgs: list = []
    result = execute_run(project, run.id, resume=True, emit=msgs.append)
    started = next(m for m in msgs if isinstance(m, Started))
    assert (started.epoch, started.iteration) == (saved["epoch"], saved["iteration"])
    assert result.status == "finished" and result.epoch == 2
    assert project.run(run.id).status == "finished"


def test_reconcile_leaves_live_runs_alone(project):
    run = create_run(project, tiny_config())
    project.update_run(run.id, status="running")
    write_pid_file(run.dir)  # this (live) process
    assert reconcile_runs(project) == []
    assert project.run(run.id).status == "running"
    (run.dir / "train.pid").write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname()[1]}))
    assert reconcile_runs(project) == [run.id]


def test_crash_in_the_child_is_reported_with_traceback(project):
    run = create_run(project, tiny_config(model=BROKEN))
    tp = TrainingProcess(project.path, run.id)
    tp.start()
    try:
        final = tp.wait(timeout=TIMEOUT)
    finally:
        tp.close()
    assert isinstance(final, Failed)
    assert "boom" in final.error and "RuntimeError" in final.traceback
    rec = project.run(run.id)
    assert rec.status == "failed" and "boom" in rec.error


def test_commands_train_list_evaluate_predict_export(demo_dir, tmp_path, capsys):
    seen: list = []
    res = commands.train(
        demo_dir,
        model=TINY,
        epochs=1,
        batch_size=4,
        image_size=96,
        weights="none",
        backbone_weights="none",
        device="cpu",
        workers=0,
        progress=seen.append,
        task="detection",
        lr=2e-3,
        warmup_iters=2,
    )
    assert res["status"] == "finished" and res["best_metric_name"] == "bbox/AP"
    assert any(isinstance(m, Iteration) for m in seen)
    assert any(isinstance(m, EpochMetrics) for m in seen)

    runs = commands.runs_list(demo_dir)
    assert len(runs) == 1 and runs[0]["status"] == "finished" and runs[0]["current"]
    assert runs[0]["best_metric"] == res["best_metric"]

    assert commands.runs_command(Namespace(dir=demo_dir, json=True)) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == res["run_id"]

    ev = commands.evaluate_run(demo_dir, res["run_id"])
    assert ev["bbox"]["AP"] == pytest.approx(res["best_metric"])
    assert {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR100", "per_class"} <= set(ev["bbox"])

    args = Namespace(dir=demo_dir, run=str(res["run_id"]), split="val", json=True)
    assert commands.eval_command(args) == 0
    assert json.loads(capsys.readouterr().out)["bbox"]["AP"] == ev["bbox"]["AP"]
    # Against the labels now: a label deleted since training changes the score, and the
    # header says which labels were used.
    from studio.core.project import Project

    with Project.open(demo_dir) as p:
        val = {im.id for im in p.images("val")}
        p.delete_annotations([a.id for a in p.annotations() if a.image_id in val][:3])
    args = Namespace(dir=demo_dir, run=str(res["run_id"]), split="val", current_labels=True)
    assert commands.eval_command(args) == 0
    out_text = capsys.readouterr().out
    assert "val images, the project's labels now," in out_text.splitlines()[0]
    now = commands.evaluate_run(demo_dir, res["run_id"], current_labels=True)
    assert now["bbox"] != ev["bbox"]
    assert commands.evaluate_run(demo_dir, res["run_id"])["bbox"] == ev["bbox"]  # frozen

    out = tmp_path / "preds.json"
    pr = commands.predict_run(demo_dir, None, out=out)  # None: the current model
    assert pr["images"] == 12 and pr["predictions"] > 0
    from studio.core.project import Project

    with Project.open(demo_dir) as p:
        stored = p.predictions(res["run_id"])
        image_ids = {im.id for im in p.images()}
        class_ids = {c.id for c in p.classes()}
    assert len(stored) == pr["predictions"] and all(0 <= r["score"] <= 1 for r in stored)
    coco = json.loads(out.read_text())
    assert coco and {r["image_id"] for r in coco} <= image_ids
    assert {r["category_id"] for r in coco} <= class_ids

    ex = commands.export_model(demo_dir, res["run_id"], "torchscript", tmp_path / "m.pt")
    scripted = torch.jit.load(ex["out"])
    meta = json.loads((tmp_path / "m.pt.json").read_text())
    assert ex["metadata"] == str(tmp_path / "m.pt.json")
    assert meta["class_ids"] and meta["task"] == "detection"
    # A folder, or the description's own name, is refused before anything is written.
    for bad in (tmp_path, tmp_path / "m.pt.json"):
        with pytest.raises(StudioError, match="is a folder|description file"):
            commands.export_model(demo_dir, res["run_id"], "torchscript", bad)
    assert not list(tmp_path.glob("*.tmp"))
    with torch.no_grad():
        out_s = scripted([torch.rand(3, 96, 128)])
    assert "boxes" in out_s[1][0]
    try:
        import onnx
    except ImportError:
        with pytest.raises(StudioError, match="pip install onnx"):
            commands.export_model(demo_dir, res["run_id"], "onnx", tmp_path / "m.onnx")
    else:
        ex = commands.export_model(demo_dir, res["run_id"], "onnx", tmp_path / "m.onnx")
        onnx.checker.check_model(str(ex["out"]))

    # Resuming a finished run with more epochs trains on; the same epochs does nothing.
    again = commands.train(demo_dir, resume=res["run_id"], epochs=2)
    assert again["status"] == "finished" and again["epoch"] == 2


@pytest.mark.slow
def test_sigterm_stops_a_cli_run_like_stop(demo_dir):
    """SIGTERM to `studio train` stops the run as Stop does: a checkpoint, status stopped,
    exit status 130, instead of being ignored."""
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "studio", "train", str(demo_dir), "--model", TINY,
           "--epochs", "500", "--weights", "none", "--backbone-weights", "none",
           "--batch-size", "2", "--workers", "0", "--device", "cpu"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        line = ""
        while "run " not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "studio train exited before training"
        time.sleep(2.0)  # some iterations
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    with Project.open(demo_dir) as p:
        (run,) = p.runs()
        assert run.status == RunStatus.STOPPED
        assert (run.dir / "last.pt").is_file()


@pytest.mark.slow
def test_cli_trains_composable_from_a_backbone_file(demo_dir, tmp_path, capsys):
    """`studio train DIR --model composable --backbone mobilenet_v2 --backbone-weights FILE
    --time-budget S` trains offline from a torchvision-format file."""
    from torchvision.models import mobilenet_v2

    from studio.cli import main

    path = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save(mobilenet_v2(weights=None).state_dict(), path)
    code = main(["train", str(demo_dir), "--model", "composable", "--backbone", "mobilenet_v2",
                 "--backbone-weights", str(path), "--time-budget", "8", "--image-size", "96",
                 "--batch-size", "2", "--workers", "0", "--device", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with Project.open(demo_dir) as p:
        (run,) = p.runs()
        cfg = json.loads((run.dir / "config.json").read_text())
    assert run.status == RunStatus.FINISHED
    assert (
        cfg["backbone_weights"] == str(path) and cfg["model_options"]["backbone"] == "mobilenet_v2"
    )

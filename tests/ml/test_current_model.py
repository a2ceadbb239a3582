"""Which finished run becomes the project's model (what predict, prelabel and Inspect
use): not one that trained no step or scored lower than the current model; the user
can choose one (`studio runs --use`, the runs list's Use as model). A resumed run's old
error is cleared when it starts again."""

from __future__ import annotations

from studio.cli import main
from studio.ml.run.recorder import RunRecorder
from studio.ml.train.messages import Finished, Started


def _finished(p, best, iterations=10, name="bbox/AP") -> int:
    run = p.create_run("r", "tiny", "detection", {})
    RunRecorder(p, run.id)(Finished(best, name if best is not None else None, 1,
                                    iterations=iterations))  # fmt: skip
    return run.id


def test_only_a_run_at_least_as_good_becomes_the_model(project):
    first = _finished(project, 0.30)
    assert project.current_model() == first
    _finished(project, 0.10)  # scored lower
    _finished(project, 0.50, iterations=0)  # trained nothing
    _finished(project, None)  # no score against a scored model
    assert project.current_model() == first
    better = _finished(project, 0.31)
    assert project.current_model() == better
    other = _finished(project, 0.05, name="segm/AP")  # not comparable: the newer wins
    assert project.current_model() == other


def test_a_resumed_run_forgets_its_old_error(project):
    run = project.create_run("r", "tiny", "detection", {})
    project.update_run(run.id, status="failed", error="interrupted: killed")
    RunRecorder(project, run.id)(Started(run.id, 4, 2, epoch=1))
    assert project.run(run.id).error is None and project.run(run.id).status == "running"


def test_studio_runs_use_makes_a_finished_run_the_model(project, demo_dir, capsys):
    good = _finished(project, 0.30)
    low = _finished(project, 0.10)
    project.close()
    assert main(["runs", str(demo_dir), "--use", str(low)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"run {low} is now the project's model")
    assert f"{low}* " in out and f"{good}* " not in out
    from studio.core.project import Project

    with Project.open(demo_dir) as p:
        assert p.current_model() == low
        stopped = p.create_run("s", "tiny", "detection", {}).id
    assert main(["runs", str(demo_dir), "--use", str(stopped)]) == 2
    assert "only a finished run can be the model" in capsys.readouterr().err


def test_train_refuses_data_that_cannot_train_before_making_a_run(project, demo_dir, capsys):
    """`studio train` printed the recipe, then failed, leaving a failed run and its
    dataset each time; the window refused the same projects before making any run."""
    project.delete_annotations([a.id for a in project.annotations()])
    project.close()
    assert main(["train", str(demo_dir), "--time-budget", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("studio: error: No class has a labelled example in the train split")
    assert not (demo_dir / "runs").exists() or not any((demo_dir / "runs").iterdir())


def test_val_without_val_images_means_the_images_the_run_held_out(project):
    """`studio eval` scored a project without a val split on the images the run held
    out; the error analysis and Inspect refused "val" and offered only all images, most
    of which the model trained on."""
    from studio.ml.run.process import create_run
    from studio.ml.run.runs import held_out_ids, split_snapshot
    from tests.ml.conftest import tiny_config

    project.set_split([im.id for im in project.images()], "train")
    run = create_run(project, tiny_config(epochs=1))
    held = held_out_ids(run)
    assert 0 < len(held) < len(project.images())
    snap = split_snapshot(project, run, "val")
    assert sorted(im.id for im in snap.images) == sorted(held)
    assert {a.image_id for a in snap.annotations} <= set(held)
    assert len(split_snapshot(project, run, "train").images) == len(project.images())


def test_a_budget_too_short_to_train_is_said(project, demo_dir, capsys):
    from studio.ml.run import preflight

    cfg, _ = preflight.config_from_settings(project, {"time_budget": 5, "device": "cpu"})
    (problem,) = preflight.budget_problems(cfg)
    assert problem.level == "warning" and problem.text.startswith("A 5 s budget is mostly set-up")
    long, _ = preflight.config_from_settings(project, {"time_budget": 60, "device": "cpu"})
    assert preflight.budget_problems(long) == []
    report = preflight.check(project, cfg, online=lambda: True)
    assert report.ok and any("mostly set-up" in w for w in report.warnings)


def test_studio_train_says_when_its_run_does_not_become_the_model(project, demo_dir, capsys):
    better = _finished(project, 0.99)  # a model no short run will beat
    project.close()
    assert main(["train", str(demo_dir), "--model", "tiny_detector", "--weights", "none",
                 "--epochs", "1", "--image-size", "96"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"run {better} stays the project's model" in out
    assert f"`studio runs {demo_dir} --use " in out

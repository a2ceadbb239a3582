"""What cannot start is said before a run exists: a mistyped --set, a weights file
that is not there, an unknown model part. Each used to leave a failed run (and its
480 KB dataset) in `studio runs`, or a traceback from inside the run."""

from __future__ import annotations

import pytest

from studio.cli import main
from studio.core.project import Project


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--set", "warmup_iters=abc"], 'warmup_iters takes int (default 200), not "abc"'),
        (["--set", "hflip=true"], "hflip takes float"),
        (["--set", "scale_range=0.5"], "scale_range takes tuple"),
        (["--weights", "nosuch.pt"], "The weights file nosuch.pt does not exist"),
        (["--model", "composable", "--backbone", "nosuch"], "unknown backbone 'nosuch'"),
        (["--model", "nosuch"], "unknown model 'nosuch'"),
    ],
)
def test_a_run_that_cannot_start_is_refused_before_it_exists(demo_dir, capsys, args, said):
    code = main(["train", str(demo_dir), "--time-budget", "5", *args])
    err = capsys.readouterr().err
    assert code == 2 and said in err and "Traceback" not in err
    with Project.open(demo_dir) as p:
        assert p.runs() == []
    assert not list((demo_dir / "runs").glob("*/dataset.json"))

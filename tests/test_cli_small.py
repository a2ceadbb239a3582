"""Small command-line slips a new user makes, each answered in one line with status 2
(they were silently ignored, or opened the window on a folder that does not exist)."""

from __future__ import annotations

import pytest

from studio.cli import main
from studio.core.demo import create_demo_project
from studio.core.project import Project


def _run(capsys, *args: str) -> tuple[int, str]:
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse's own refusals, and --help
        code = int(e.code)
    return code, capsys.readouterr().err


def _out(capsys, *args: str) -> str:
    try:
        main(list(args))
    except SystemExit:
        pass
    return capsys.readouterr().out


def test_a_misspelt_command_is_named_with_the_right_one(capsys, tmp_path) -> None:
    code, err = _run(capsys, "infoo", str(tmp_path))
    assert code == 2 and "'infoo' is neither a command nor a folder; did you mean 'info'?" in err


def test_a_demo_of_no_images_is_refused(capsys, tmp_path) -> None:
    code, err = _run(capsys, "demo", str(tmp_path / "d"), "--images", "-5")
    assert code == 2 and "at least 1" in err and not (tmp_path / "d").exists()


def test_split_shares_with_assign_are_refused_not_ignored(capsys, tmp_path) -> None:
    create_demo_project(tmp_path / "p", n_images=4).close()
    with Project.open(tmp_path / "p") as p:
        name = p.images()[0].name
        before = {im.id: im.split for im in p.images()}
    code, err = _run(capsys, "split", str(tmp_path / "p"), "--assign", "test", "--files", name,
                     "--val", "0.5")  # fmt: skip
    assert code == 2 and "with --assign they would do nothing" in err
    with Project.open(tmp_path / "p") as p:
        assert {im.id: im.split for im in p.images()} == before


def test_models_options_without_describe_are_refused(capsys) -> None:
    code, err = _run(capsys, "models", "--image-size", "320")
    assert code == 2 and "--image-size: these describe one model" in err
    code, err = _run(capsys, "models", "--image-size", "-5", "--describe", "x")
    assert code == 2 and "at least 1" in err


def test_the_confusion_matrix_shows_background_whole() -> None:
    from studio.ml.analysis.errors_report import format_report

    data = {
        "run_id": 1, "images": 2, "iou": 0.5, "score": 0.05,
        "per_class": {}, "total": {}, "ap": {}, "errors": {}, "error_counts": {},
        "confusion": {"labels": ["cat", "background"], "matrix": [[3, 1], [2, 0]]},
    }  # fmt: skip
    text = format_report(data)
    assert "background" in text.splitlines()[text.splitlines().index(
        "confusion (rows: labels, columns: predictions)") + 1]  # fmt: skip


@pytest.mark.parametrize("flag", ["--neck-channels", "--head-convs", "--depth"])
def test_train_help_names_numbers_as_numbers(capsys, flag) -> None:
    assert f"{flag} N" in _out(capsys, "train", "--help")

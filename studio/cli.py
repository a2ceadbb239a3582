"""The `studio` command line.

`studio [DIR] [--demo]` opens the window (DIR a project, or a folder of images to make
one for); `studio VERB ...` runs a command headless.
Imports of Qt and torch happen inside the verbs that need them, so `studio info` stays
fast. A user error prints one line naming the file and the problem, exit status 2; no
traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from studio.cli_parser import VERBS, build_parser
from studio.core.errors import StudioError


def _bar(desc: str):
    """A tqdm progress bar fed by a `Progress` callback (to stderr, so --json stays clean)."""
    from tqdm import tqdm

    bar = tqdm(total=0, desc=desc, unit="file", file=sys.stderr, disable=None, leave=False)

    def update(done: int, total: int, text: str) -> None:
        if bar.disable:  # not a terminal
            return
        if bar.total != total:
            bar.reset(total=total)
        if text and bar.desc != text:
            bar.set_description(text, refresh=False)
        bar.n = done
        bar.refresh() if done == total else bar.update(0)

    return bar, update


def _progress(desc: str):
    from studio.core.progress import Progress

    bar, cb = _bar(desc)
    return bar, Progress(cb)


def cmd_new(a: argparse.Namespace) -> int:
    from studio.core.project import Project

    Project.create(a.dir).close()
    print(f"created project {a.dir}")
    return 0


def _report_plugins(infos) -> None:
    for info in infos:
        if info.error:
            print(
                f"warning: plugin {info.name} ({info.origin}) not loaded: {info.error}",
                file=sys.stderr,
            )


def cmd_import(a: argparse.Namespace) -> int:
    from studio.core.importing import import_annotations
    from studio.core.plugins import load_plugins
    from studio.core.project import Project

    _report_plugins(load_plugins())
    with Project.open(a.dir) as project:
        bar, progress = _progress(f"importing {a.format}")
        try:
            report = import_annotations(
                project, a.format, a.path, a.images, a.classes, progress, a.skip_missing
            )
        finally:
            bar.close()
    if a.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        for file, reason in report.skipped:
            print(f"skipped {file}: {reason}", file=sys.stderr)
        for where in report.missing:
            print(f"image not found, skipped: {where}", file=sys.stderr)
        for w in report.warnings:
            print(f"warning: {w}", file=sys.stderr)
        print(report.summary())
    # Bad input exits with status 2, as every command's errors do (see the README).
    if report.nothing_imported:
        print(f"studio: error: {a.path}: nothing could be imported", file=sys.stderr)
        return 2
    if report.source_entries == 0 and a.format == "images":
        print(f"studio: error: {a.path}: no image files here", file=sys.stderr)
        return 2
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from studio.core.importing import export_annotations
    from studio.core.plugins import load_plugins
    from studio.core.project import Project

    _report_plugins(load_plugins())
    with Project.open(a.dir) as project:
        warnings = export_annotations(project, a.format, a.out, a.split)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"exported {a.format} to {a.out}")
    return 0


def cmd_info(a: argparse.Namespace) -> int:
    from studio.core.project import Project

    with Project.open(a.dir) as project:
        info = project.info()
    if a.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"project      {info['project']}")
    print(f"images       {info['images']} ({info['labelled_images']} labelled)")
    print(
        f"annotations  {info['annotations']}  "
        + "  ".join(f"{k} {v}" for k, v in info["kinds"].items())
    )
    print("splits       " + "  ".join(f"{k} {v}" for k, v in info["splits"].items()))
    print("statuses     " + "  ".join(f"{k} {v}" for k, v in info["statuses"].items()))
    print(f"classes      {len(info['classes'])}")
    for name, n in info["classes"].items():
        print(f"  {name:<24} {n}")
    print(f"runs         {info['runs']}")
    return 0


def cmd_split(a: argparse.Namespace) -> int:
    from studio.core.project import Project
    from studio.core.splits import assign_splits, resolve_files

    with Project.open(a.dir) as project:
        if a.assign or a.files:
            if not (a.assign and a.files):
                raise StudioError("--assign and --files go together")
            if (a.val, a.test, a.seed) != (None, None, None):
                raise StudioError(
                    "--val, --test and --seed shape a random split; with --assign they "
                    "would do nothing"
                )
            src = Path(a.files)
            names = (
                src.read_text(encoding="utf-8").splitlines()
                if src.is_file()
                else a.files.split(",")
            )
            ids = resolve_files(project, names)
            project.set_split(ids, a.assign)
            print(f"{len(ids)} images set to {a.assign}")
            return 0
        counts = assign_splits(
            project,
            0.2 if a.val is None else a.val,
            0.0 if a.test is None else a.test,
            a.seed or 0,
        )
    print("  ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from studio.core.demo import create_demo_project

    bar, progress = _progress("creating demo")
    try:
        project = create_demo_project(a.dir, n_images=a.images, seed=a.seed, progress=progress)
    finally:
        bar.close()
    info = project.info()
    project.close()
    print(f"created demo project {a.dir}: {info['images']} images, {info['annotations']} shapes")
    return 0


def cmd_models(a: argparse.Namespace) -> int:
    from studio.ml import cli as commands

    return commands.models_command(a)


def cmd_analyze(a: argparse.Namespace) -> int:
    if a.analysis == "errors":
        from studio.ml.analysis.errors_report import errors_command

        return errors_command(a)
    if a.analysis == "cam":
        from studio.ml.analysis.cam_report import cam_command

        return cam_command(a)
    from studio.ml.analysis.zoom_report import zoom_command

    return {"zoom": zoom_command}[a.analysis](a)


def cmd_prelabel(a: argparse.Namespace) -> int:
    from studio.ml.analysis.prelabel import prelabel_command

    return prelabel_command(a)


def _ml(name: str):
    def run(a: argparse.Namespace) -> int:
        from studio.ml import cli as commands

        return getattr(commands, name)(a)

    return run


HANDLERS = {
    "new": cmd_new,
    "import": cmd_import,
    "export": cmd_export,
    "info": cmd_info,
    "split": cmd_split,
    "demo": cmd_demo,
    "models": cmd_models,
    "analyze": cmd_analyze,
    "prelabel": cmd_prelabel,
    "train": _ml("train_command"),
    "weights": _ml("weights_command"),
    "runs": _ml("runs_command"),
    "eval": _ml("eval_command"),
    "predict": _ml("predict_command"),
    "export-model": _ml("export_model_command"),
}


def _gui(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="studio",
        description="Open the Studio window. Commands: "
        + ", ".join(VERBS)
        + " (studio VERB --help).",
    )
    ap.add_argument(
        "project",
        nargs="?",
        type=Path,
        help="project folder to open, or a folder of images (with labelme, VOC or YOLO "
        "labels beside them): its project, FOLDER/.studio, is made or reopened and what "
        "is new in the folder imported",
    )
    ap.add_argument(
        "--demo", action="store_true", help="open (and create if needed) the demo project"
    )
    ap.add_argument(
        "--project-dir", type=Path, help="where to make the project of a folder of images"
    )
    a = ap.parse_args(argv)
    from studio.core.plugins import load_plugins

    _report_plugins(load_plugins())
    project = a.project
    if project is not None and project.is_dir() and not (project / "studio.db").is_file():
        project = _open_image_folder(project, a.project_dir)
    from studio.ui.app import run_app

    return run_app(project, demo=a.demo)


def _open_image_folder(folder: Path, project_dir: Path | None) -> Path:
    """`studio FOLDER` on a folder that is not a project: make or reopen its project and
    import what is new, with a summary on stderr; returns the project folder."""
    from studio.core.open_folder import open_folder

    bar, progress = _progress("opening folder")
    try:
        opened = open_folder(folder, project_dir, progress)
    finally:
        bar.close()
    for line in opened.details() + opened.summary_lines():
        print(line, file=sys.stderr)
    return opened.project_dir


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in VERBS:
            a = build_parser().parse_args(argv)
            return HANDLERS[a.verb](a)
        if argv and not argv[0].startswith("-") and not Path(argv[0]).exists():
            close = difflib.get_close_matches(argv[0], VERBS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"commands: {', '.join(VERBS)}"
            raise StudioError(f"{argv[0]!r} is neither a command nor a folder; {hint}")
        return _gui(argv)
    except StudioError as e:
        print(f"studio: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("studio: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `studio runs --json | head`: the reader left; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())

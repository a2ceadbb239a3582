"""The `studio` command line.

`studio [DIR] [--demo]` opens the window (DIR a project, or a folder of images to make
one for); `studio VERB ...` runs a command headless.
Imports of Qt and torch happen inside the verbs that need them, so `studio info` stays
fast. A user error prints one line naming the file and the problem, exit status 2; no
traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.kinds import Split, values

VERBS = (
    "new", "import", "export", "info", "split", "demo",
    "train", "runs", "eval", "predict", "export-model", "models", "analyze", "prelabel",
    "weights",
)  # fmt: skip
IMPORT_FORMATS = ("images", "coco", "yolo", "voc", "labelme", "cvat")
EXPORT_FORMATS = ("coco", "yolo", "voc", "labelme")
SPLITS = values(Split)


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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="studio", description="Label, train and inspect detectors.")
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB")
    _project_verbs(sub)
    _transfer_verbs(sub)
    _training_verbs(sub)
    _model_verbs(sub)
    _analysis_verbs(sub)
    return ap


def _project_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="the project folder")


def _json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _split_arg(p: argparse.ArgumentParser, help: str, **kw) -> None:
    p.add_argument("--split", choices=SPLITS, help=help, **kw)


def _project_verbs(sub) -> None:
    p = sub.add_parser("new", help="create an empty project")
    _project_arg(p)

    p = sub.add_parser("info", help="counts of images, shapes, classes, splits")
    _project_arg(p)
    _json_arg(p)

    p = sub.add_parser("split", help="assign train/val/test splits")
    _project_arg(p)
    p.add_argument("--val", type=float, default=0.2, help="share of images for val (0.2)")
    p.add_argument("--test", type=float, default=0.0, help="share of images for test (0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the stratified split (0)")
    p.add_argument("--assign", choices=SPLITS, help="set the split of --files")
    p.add_argument(
        "--files", help="a text file with one image a line, or names separated by commas"
    )

    p = sub.add_parser("demo", help="create the demo project")
    p.add_argument("dir", type=Path, help="folder to create the demo project in")
    p.add_argument("--images", type=int, default=300, help="number of images (default 300)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated images (0)")


def _transfer_verbs(sub) -> None:
    p = sub.add_parser("import", help="import images or annotations into a project")
    _project_arg(p)
    # No argparse choices: plugins may add formats (checked once plugins are loaded).
    p.add_argument("--format", required=True, help="|".join(IMPORT_FORMATS) + " or a plugin's")
    p.add_argument("path", type=Path, help="folder of images, or annotation file/folder")
    p.add_argument(
        "--images", type=Path, help="where the images are, if the annotations do not say"
    )
    p.add_argument(
        "--classes", type=Path, help="classes.txt: one class name a line, in index order"
    )
    p.add_argument(
        "--skip-missing",
        action="store_true",
        help="import what has an image; list the images not found (and leave out their shapes)",
    )
    _json_arg(p)

    p = sub.add_parser("export", help="export annotations")
    _project_arg(p)
    p.add_argument("--format", required=True, help="|".join(EXPORT_FORMATS) + " or a plugin's")
    p.add_argument("out", type=Path, help="the file or folder to write")
    _split_arg(p, "export only this split (default: all images)")


def _training_verbs(sub) -> None:
    from studio.ml.run.options import add_train_arguments

    p = sub.add_parser("train", help="fine-tune a model on the project's labels")
    _project_arg(p)
    add_train_arguments(p)
    p.add_argument("--resume", help="run id to resume from its last checkpoint")

    p = sub.add_parser("weights", help="pretrained files each model can use, and where they are")
    p.add_argument("--model", help="only this model")
    p.add_argument(
        "--project", type=Path, help="a project folder: also look in its weights folder setting"
    )

    p = sub.add_parser("runs", help="list training runs")
    _project_arg(p)
    _json_arg(p)

    p = sub.add_parser("eval", help="evaluate a run with pycocotools")
    _project_arg(p)
    p.add_argument("--run", required=True, help="run id or name")
    _split_arg(p, "images to evaluate on (default val)", default="val")
    _json_arg(p)

    p = sub.add_parser("predict", help="store a run's predictions")
    _project_arg(p)
    p.add_argument("--run", required=True, help="run id or name")
    _split_arg(p, "predict only this split")
    p.add_argument("--out", type=Path, help="also write COCO results JSON here")


def _model_verbs(sub) -> None:
    p = sub.add_parser("export-model", help="export a trained model")
    _project_arg(p)
    p.add_argument("--run", required=True, help="run id or name")
    p.add_argument(
        "--format", required=True, choices=("torchscript", "onnx"), help="the file format"
    )
    p.add_argument("out", type=Path, help="the file to write")

    p = sub.add_parser("models", help="list the models that can be trained")
    p.add_argument("--describe", metavar="NAME", help="layers, params and GFLOPs of one model")
    p.add_argument("--image-size", type=int, default=640, help="input side for GFLOPs (640)")
    p.add_argument("--backbone", help="composable detector: the backbone")
    p.add_argument("--neck", help="composable detector: the neck (fpn, pan)")
    p.add_argument("--head", help="composable detector: the head (fcos, retinanet)")
    p.add_argument(
        "--attention",
        choices=("none", "se", "eca", "cbam"),
        help="composable detector: attention after each neck level (se, eca: channel; cbam: "
        "channel + spatial); --describe lists where the modules go, their params and GFLOPs",
    )
    p.add_argument("--task", help="only models of this task")
    p.add_argument("--no-flops", action="store_true", help="skip counting GFLOPs (faster)")


def _errors_verb(e: argparse.ArgumentParser) -> None:
    _project_arg(e)
    e.add_argument("--run", required=True, help="run id or name")
    _split_arg(e, "analyse only this split (default: all labelled images)")
    e.add_argument("--iou", type=float, default=0.5, help="IoU for a match (0.5)")
    e.add_argument("--score", type=float, default=0.3, help="score a prediction needs (0.3)")
    e.add_argument("--iou-type", choices=("auto", "bbox", "segm"), help="auto: masks if predicted")
    e.add_argument("--bands", help="size bands for AP, e.g. tiny=0:16,small=16:32 (side, px)")
    e.add_argument("--size-bands", metavar="EDGES", help="AP per size band, edges 8,16,32,96 (px)")
    _json_arg(e)


def _analysis_verbs(sub) -> None:
    p = sub.add_parser("analyze", help="analyses of a project against a model")
    what = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    z = what.add_parser(
        "zoom", help="cells of each feature grid an object covers, at each zoom scale"
    )
    z.add_argument("dir", type=Path, nargs="?", help="the project folder (not needed with --box)")
    g = z.add_mutually_exclusive_group()
    g.add_argument("--run", help="run id or name: its model and image size")
    g.add_argument("--model", help="a model name from `studio models` (default: chosen for you)")
    z.add_argument(
        "--image-size",
        type=int,
        help="input size setting in pixels (default: the model's or the run's)",
    )
    z.add_argument("--scales", help="zoom scales, e.g. 1,0.8,0.567,0.4,0.28 (these by default)")
    z.add_argument("--box", type=float, metavar="PIXELS", help="one box size at the model input")
    z.add_argument("--csv", type=Path, metavar="PATH", help="with --run: the AP per zoom as CSV")
    z.add_argument("--no-empirical", action="store_true", help="with --run: skip evaluating")
    _json_arg(z)

    c = what.add_parser("cam", help="an activation map of a run's model over an image, as PNG")
    _project_arg(c)
    c.add_argument("--run", required=True, help="run id or name")
    c.add_argument("--image", help="the image: its file name, stored path or id")
    c.add_argument("--layer", help="a layer id, or `list` to print the model's layers")
    c.add_argument(
        "--method",
        default="eigencam",
        choices=("eigencam", "gradcam", "features"),
        help="EigenCAM (any detector), Grad-CAM of one box, or raw feature maps",
    )
    c.add_argument("--box", type=int, help="gradcam: the prediction, by score rank (0: best)")
    c.add_argument("--grid", type=int, help="features: tile the N strongest channels")
    c.add_argument("--alpha", type=float, default=0.5, help="opacity of the map (0.5)")
    c.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="where to run"
    )
    c.add_argument("--out", type=Path, help="the PNG to write")

    _errors_verb(what.add_parser("errors", help="TP/FP/FN, AP, confusion, errors of a run"))

    p = sub.add_parser("prelabel", help="add a run's predictions as shapes to review")
    _project_arg(p)
    p.add_argument("--run", required=True, help="run id or name")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--unlabelled", action="store_true", help="images without shapes")
    g.add_argument("--split", choices=SPLITS, help="the images of this split")
    g.add_argument("--images", help="a text file with one image a line, or names with commas")
    p.add_argument("--score", type=float, default=0.5, help="score a prediction needs (0.5)")
    p.add_argument(
        "--skip-overlapping", action="store_true", help="skip predictions on existing labels"
    )


# --- verbs ---------------------------------------------------------------------------------


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
        counts = assign_splits(project, a.val, a.test, a.seed)
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

"""The `studio` command line's arguments: every verb, its options and their help.

`studio.cli` runs them; this module only describes them (no imports of the work).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.core.kinds import Split, values

VERBS = (
    "new", "import", "export", "info", "split", "demo",
    "train", "runs", "eval", "predict", "export-model", "models", "analyze", "prelabel",
    "weights",
)  # fmt: skip
IMPORT_FORMATS = ("images", "coco", "yolo", "voc", "labelme", "cvat")
EXPORT_FORMATS = ("coco", "yolo", "voc", "labelme")
SPLITS = values(Split)


def _positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return n


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
    p.add_argument("--val", type=float, help="share of images for val (0.2)")
    p.add_argument("--test", type=float, help="share of images for test (0)")
    p.add_argument("--seed", type=int, help="seed of the stratified split (0)")
    p.add_argument("--assign", choices=SPLITS, help="set the split of --files")
    p.add_argument(
        "--files", help="a text file with one image a line, or names separated by commas"
    )

    p = sub.add_parser("demo", help="create the demo project")
    p.add_argument("dir", type=Path, help="folder to create the demo project in")
    p.add_argument(
        "--images", type=_positive_int, default=300, help="number of images (default 300)"
    )
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
    p.add_argument("--use", metavar="RUN", help="make RUN (id or name) the project's model: "
                   "what predict and prelabel use when no run is named")  # fmt: skip

    p = sub.add_parser("eval", help="evaluate a run with pycocotools")
    _project_arg(p)
    p.add_argument("--run", required=True, help="run id or name")
    _split_arg(p, "images to evaluate on (default val)", default="val")
    p.add_argument("--current-labels", action="store_true",
                   help="score against the project's labels now (default: the labels "
                   "as the run trained, from its dataset.json, so results reproduce)")  # fmt: skip
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
    p.add_argument(
        "--image-size", type=_positive_int, help="with --describe: input side for GFLOPs (640)"
    )
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

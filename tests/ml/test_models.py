"""The model registry: every model builds, trains a step and predicts in the shared contract;
composable parts give the promised strides; weights load safely and fail clearly offline."""

from __future__ import annotations

import math
import os
import pickle
import urllib.error

import pytest
import torch
import torch.hub
from torch import nn
from torchvision.models import get_model, get_model_weights
from torchvision.ops import FrozenBatchNorm2d

from studio.core.errors import StudioError
from studio.ml.models import (
    BACKBONE_NODES,
    C3,
    MODELS,
    SPPF,
    TASKS,
    Bottleneck,
    C2f,
    Conv,
    ModelConfigError,
    SpaceToDepth,
    WeightsError,
    build_model,
    describe_model,
    format_description,
    format_model_table,
    get_spec,
    list_models,
    model_complexity,
    param_groups,
)
from studio.ml.models.weights import cache_path

# The resnet50 models take seconds per step on a laptop CPU.
HEAVY = [
    "fasterrcnn_resnet50_fpn_v2",
    "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn",
    "maskrcnn_resnet50_fpn_v2",
    "deeplabv3_resnet50",
    "fcn_resnet50",
]
LIGHT = [name for name in MODELS if name not in HEAVY]
# Fewer proposals and sampled RoIs keep the two-stage models quick without skipping any code.
FEW_ROIS = {
    "rpn_pre_nms_top_n_train": 200,
    "rpn_post_nms_top_n_train": 64,
    "rpn_pre_nms_top_n_test": 200,
    "rpn_post_nms_top_n_test": 64,
    "box_batch_size_per_image": 32,
}
SIZES = [(96, 128), (128, 96)]  # (H, W) of the two test images


def _options(name: str) -> dict[str, object]:
    return dict(FEW_ROIS) if "rcnn" in name else {}


def _images() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.rand(3, h, w, generator=gen) for h, w in SIZES]


def _targets(task: str) -> list[dict[str, torch.Tensor]]:
    targets = []
    for h, w in SIZES:
        if task == "semantic_segmentation":
            mask = torch.zeros(h, w, dtype=torch.int64)
            mask[10:60, 20:70] = 2
            mask[70:, :30] = 255
            targets.append({"sem_mask": mask})
            continue
        boxes = torch.tensor([[10.0, 12.0, 60.0, 70.0], [50.0, 40.0, 90.0, 90.0]])
        target = {"boxes": boxes, "labels": torch.tensor([1, 3])}
        if task == "instance_segmentation":
            masks = torch.zeros(2, h, w, dtype=torch.uint8)
            for i, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
                masks[i, y0:y1, x0:x1] = 1
            target["masks"] = masks
        targets.append(target)
    return targets


def _check_train_and_eval(name: str) -> None:
    torch.manual_seed(0)
    built = build_model(name, 3, image_size=128, **_options(name))
    model, task = built.model, built.spec.task
    assert built.warnings == []

    model.train()
    losses = model(_images(), _targets(task))
    assert isinstance(losses, dict) and losses
    for key, loss in losses.items():
        assert loss.ndim == 0 and torch.isfinite(loss), (key, loss)
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)

    model.eval()
    with torch.no_grad():
        outputs = model(_images())
    assert len(outputs) == 2
    for out, (h, w) in zip(outputs, SIZES, strict=True):
        if task == "semantic_segmentation":
            assert out["sem_seg"].shape == (h, w) and out["sem_seg"].dtype == torch.int64
            assert out["sem_logits"].shape == (4, h, w)
            continue
        n = len(out["boxes"])
        assert out["boxes"].shape == (n, 4)
        assert out["labels"].shape == (n,) and out["labels"].dtype == torch.int64
        assert out["scores"].shape == (n,)
        if task == "instance_segmentation":
            assert out["masks"].shape == (n, 1, h, w)

    groups = param_groups(model)
    assert set(groups) == {"backbone", "neck", "head"}
    assert groups["backbone"] and groups["head"]
    grouped = [id(p) for params in groups.values() for p in params]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())


def _feature_strides(name: str) -> list[int]:
    """Strides of the feature maps that feed the heads, measured on a forward."""
    spec = get_spec(name)
    size = spec.resize.get("fixed", 256)
    model = build_model(name, 3, image_size=size, **_options(name)).model.eval()
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        if spec.task == "semantic_segmentation":
            feats = model.net.backbone(x)
            feats = {k: v for k, v in feats.items() if k != "aux"}  # training-only head
            feats = dict(sorted(feats.items(), key=lambda kv: -kv[1].shape[-1]))
        else:
            feats = model.backbone(x)
    return [round(size / f.shape[-1]) for f in feats.values()]


def test_registry_lists_every_model_with_consistent_specs():
    expected = {
        "fasterrcnn_resnet50_fpn_v2",
        "fasterrcnn_mobilenet_v3_large_fpn",
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "retinanet_resnet50_fpn_v2",
        "fcos_resnet50_fpn",
        "ssdlite320_mobilenet_v3_large",
        "maskrcnn_resnet50_fpn_v2",
        "deeplabv3_resnet50",
        "deeplabv3_mobilenet_v3_large",
        "lraspp_mobilenet_v3_large",
        "fcn_resnet50",
        "unet",
        "composable",
        "composable_resnet18_fpn_fcos",
        "composable_mobilenet_v3_pan_fcos",
        "composable_resnet18_pan_retinanet",
    }
    assert expected <= set(MODELS)
    for spec in list_models():
        assert spec.task in TASKS
        assert len(spec.feature_levels) == len(spec.strides)
        assert spec.default_image_size in spec.resize.values()
    assert {s.task for s in list_models("semantic_segmentation")} == {"semantic_segmentation"}
    builtin = [s for s in list_models("instance_segmentation") if s.family != "tiny"]  # tests'
    assert "maskrcnn_resnet50_fpn_v2" in [s.name for s in builtin]
    assert {s.task for s in builtin} == {"instance_segmentation"}
    with pytest.raises(ModelConfigError):
        list_models("classification")
    with pytest.raises(ModelConfigError, match="unknown model"):
        build_model("yolo_v99", 3)
    with pytest.raises(ModelConfigError, match="num_classes"):
        build_model("unet", 0)
    # Any backbone/neck/head combination is a valid name, not only the presets.
    spec = get_spec("composable_efficientnet_b1_pan_retinanet")
    assert spec.options == {"backbone": "efficientnet_b1", "neck": "pan", "head": "retinanet"}
    assert spec.strides == (8, 16, 32)


def test_bad_options_are_user_errors():
    with pytest.raises(StudioError, match="backbone"):
        build_model("composable", 3, backbone="vgg11")
    with pytest.raises(StudioError, match="neck"):
        build_model("composable", 3, neck="bifpn")
    with pytest.raises(StudioError):
        build_model("ssdlite320_mobilenet_v3_large", 3, no_such_option=1)


@pytest.mark.parametrize("name", LIGHT)
def test_builds_trains_and_predicts(name):
    _check_train_and_eval(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", HEAVY)
def test_builds_trains_and_predicts_resnet50(name):
    _check_train_and_eval(name)
    assert _feature_strides(name) == list(get_spec(name).strides)


@pytest.mark.parametrize(
    "name",
    [
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "ssdlite320_mobilenet_v3_large",
        "lraspp_mobilenet_v3_large",
        "deeplabv3_mobilenet_v3_large",
    ],
)
def test_spec_strides_match_the_feature_maps(name):
    assert _feature_strides(name) == list(get_spec(name).strides)


@pytest.mark.parametrize("backbone", sorted(BACKBONE_NODES))
def test_composable_backbone_strides(backbone):
    model = build_model("composable", 3, backbone=backbone, image_size=128).model.eval()
    with torch.no_grad():
        feats = model.backbone(torch.rand(1, 3, 128, 128))
    assert list(feats) == ["P3", "P4", "P5"]
    assert [128 // f.shape[-1] for f in feats.values()] == [8, 16, 32]
    assert {f.shape[1] for f in feats.values()} == {model.backbone.out_channels}


@pytest.mark.parametrize(
    "neck_options",
    [{"neck": "fpn"}, {"neck": "pan"}, {"neck": "pan", "downsample": "s2d", "block": "c3"}],
)
def test_composable_necks_on_odd_sizes(neck_options):
    # The transform pads to multiples of 32; the neck must still cope with odd map sizes.
    model = build_model("composable", 3, backbone="mobilenet_v3_small", **neck_options).model
    with torch.no_grad():
        feats = model.backbone.eval()(torch.rand(1, 3, 100, 150))
    assert [tuple(f.shape[-2:]) for f in feats.values()] == [(13, 19), (7, 10), (4, 5)]


def test_blocks_shapes():
    x = torch.rand(2, 16, 9, 14)
    assert Conv(16, 32, 3, 2)(x).shape == (2, 32, 5, 7)
    assert Bottleneck(16, 16)(x).shape == x.shape
    assert C2f(16, 24, n=2)(x).shape == (2, 24, 9, 14)
    assert C3(16, 24, n=2)(x).shape == (2, 24, 9, 14)
    assert SPPF(16, 8)(x).shape == (2, 8, 9, 14)
    assert SpaceToDepth(16, 32)(x).shape == (2, 32, 5, 7)
    # Space-to-depth keeps every pixel: it is exactly invertible.
    even = torch.rand(1, 4, 8, 6)
    s2d = SpaceToDepth(4, 4)
    assert torch.equal(nn.functional.pixel_shuffle(s2d.unshuffle(even), 2), even)


@pytest.fixture
def one_thread():
    # Thirty small steps are dominated by thread synchronisation: one thread is about as fast
    # on an idle machine and several times faster on a busy one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_composable_detector_overfits_two_images(one_thread):
    torch.manual_seed(0)
    model = build_model("composable_resnet18_fpn_fcos", 3, image_size=128).model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images, targets = _images(), _targets("detection")
    history = []
    for _ in range(30):
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < 0.7 * history[0], history


def test_describe_composable_detector():
    parts = describe_model("composable", image_size=256)
    by_name = {p.name: p for p in parts}
    assert list(by_name) == ["backbone", "neck", "head"]
    assert list(by_name["backbone"].strides.values()) == [8, 16, 32]
    assert by_name["neck"].strides == {"P3": 8, "P4": 16, "P5": 32}
    assert by_name["neck"].outputs["P3"][-2:] == (32, 32)
    assert all(p.params > 0 and p.gflops > 0 for p in parts)
    text = format_description(parts)
    assert "P5" in text and "total" in text


def test_model_complexity_and_table():
    model = build_model("unet", 3, base_channels=8).model.train()
    params, gflops = model_complexity(model, 64)
    assert params == sum(p.numel() for p in model.parameters()) and gflops > 0
    assert model.training  # mode restored
    table = format_model_table([get_spec("unet")], with_flops=False)
    assert "unet" in table and "semantic_segmentation" in table


# --- weights -------------------------------------------------------------------------------


class Payload:
    """Pickled as a class reference: weights-only loading must refuse it."""


class ShellPayload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        # Would create the marker file if unpickling ever executed it.
        return (os.system, (f"echo hi > {self.marker}",))


def test_missing_and_corrupt_files_raise_weights_error(tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(WeightsError, match=str(missing)):
        build_model("unet", 3, weights=str(missing))
    good = tmp_path / "good.pt"
    torch.save({"w": torch.zeros(3)}, good)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:100])
    with pytest.raises(WeightsError, match="not a readable PyTorch weights file") as info:
        build_model("unet", 3, weights=str(corrupt))
    assert str(corrupt) in str(info.value)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not weights at all " * 10)
    with pytest.raises(WeightsError, match="not a readable"):
        build_model("unet", 3, weights=str(garbage))


@pytest.mark.parametrize("kind", ["custom_class", "reduce_os_system"])
def test_pickled_code_is_refused(tmp_path, kind):
    path = tmp_path / f"{kind}.pt"
    marker = tmp_path / "executed"
    if kind == "custom_class":
        torch.save({"model": {"w": torch.zeros(2)}, "extra": Payload()}, path)
    else:
        path.write_bytes(pickle.dumps({"model": ShellPayload(str(marker))}))
    with pytest.raises(WeightsError, match="refused to load: the file contains pickled") as info:
        build_model("unet", 3, weights=str(path))
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_checkpoint_for_other_class_count_reinitialises_heads(tmp_path):
    torch.manual_seed(0)
    options = {"backbone": "mobilenet_v3_small", "image_size": 128}
    five = build_model("composable", 5, **options).model
    path = tmp_path / "five.pt"
    torch.save({"model": five.state_dict(), "class_names": list("abcde")}, path)

    torch.manual_seed(1)
    built = build_model("composable", 3, weights=str(path), **options)
    three = built.model
    assert built.class_names == list("abcde")
    assert any("re-initialised" in w and "cls_logits" in w for w in built.warnings)
    assert three.head.classification_head.cls_logits.out_channels == 4
    saved, loaded = five.state_dict(), three.state_dict()
    for key in ("backbone.body.features.0.0.weight", "head.regression_head.bbox_reg.weight"):
        assert torch.equal(saved[key], loaded[key])

    # Same class count: everything loads, no warning.
    same = build_model("composable", 5, weights=str(path), **options)
    assert same.warnings == []


@pytest.fixture
def offline_torch_home(tmp_path, monkeypatch):
    """An empty torchvision cache and a download that always fails."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(url, dst, *args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch"


def test_default_weights_offline_fall_back_to_random_init(offline_torch_home):
    built = build_model("ssdlite320_mobilenet_v3_large", 3, weights="default", image_size=128)
    assert len(built.warnings) == 1
    message = built.warnings[0]
    assert "ssdlite320_mobilenet_v3_large_coco-a79551df.pth" in message
    assert "random init" in message and "studio weights" in message
    assert built.model.head.classification_head.num_columns == 4

    # Composable detectors' pretrained part is the ImageNet backbone: same fallback.
    built = build_model("composable", 3, weights="default", backbone="mobilenet_v3_small")
    assert "mobilenet_v3_small" in built.warnings[0]
    # The ImageNet backbone (the default backbone_weights) never blocks a build either.
    built = build_model("composable", 3, backbone="mobilenet_v3_small", backbone_weights="imagenet")
    assert len(built.warnings) == 1 and "random init" in built.warnings[0]


def test_default_weights_from_cache_get_new_heads(offline_torch_home):
    weights = get_model_weights("ssdlite320_mobilenet_v3_large").DEFAULT
    coco = get_model("ssdlite320_mobilenet_v3_large", weights=None, weights_backbone=None)
    path = cache_path(weights)
    path.parent.mkdir(parents=True)
    torch.save(coco.state_dict(), path)

    built = build_model("ssdlite320_mobilenet_v3_large", 3, weights="default")
    assert built.warnings == []
    model = built.model
    assert model.head.classification_head.num_columns == 4  # 3 classes + background
    key = "backbone.features.0.0.0.weight"
    assert torch.equal(model.state_dict()[key], coco.state_dict()[key])


def test_imagenet_backbone_from_cache_is_loaded_and_frozen(offline_torch_home):
    weights = get_model_weights("mobilenet_v3_small").DEFAULT
    imagenet = get_model("mobilenet_v3_small")
    path = cache_path(weights)
    path.parent.mkdir(parents=True)
    torch.save(imagenet.state_dict(), path)

    model = build_model(
        "composable", 3, backbone="mobilenet_v3_small", backbone_weights="imagenet"
    ).model
    body = model.backbone.body
    assert not any(isinstance(m, nn.BatchNorm2d) for m in body.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in body.modules())
    assert torch.equal(
        body.state_dict()["features.1.block.0.0.weight"], imagenet.features[1].block[0][0].weight
    )


def test_a_plugin_registers_a_model_with_its_own_builder(monkeypatch):
    from studio.ml.models import ModelSpec, register_model, registry

    # The registry is module state: restore it after the test.
    monkeypatch.setattr(registry, "MODELS", dict(registry.MODELS))
    monkeypatch.setattr(registry, "_MODEL_BUILDERS", dict(registry._MODEL_BUILDERS))
    calls = []

    def build(spec, num_classes, resize, pretrained, backbone_pretrained, options):
        calls.append((spec.name, num_classes, resize, pretrained, backbone_pretrained, options))
        return nn.Sequential(nn.Conv2d(3, num_classes + 1, 1))

    spec = ModelSpec(
        name="plugin_detector",
        task="detection",
        description="a plugin's model",
        feature_levels=("C1",),
        strides=(1,),
        resize={"fixed": 64},
        default_image_size=64,
        supports_pretrained=False,
        family="plugin",
    )
    register_model(spec, build)
    assert get_spec("plugin_detector") is spec and spec in list_models("detection")
    built = build_model("plugin_detector", 3, weights="default", width=2)
    assert calls == [("plugin_detector", 3, {"fixed": 64}, False, False, {"width": 2})]
    assert built.spec is spec and "no pretrained weights" in built.warnings[0]
    with pytest.raises(ModelConfigError, match="already registered"):
        register_model(spec, build)
    register_model(spec, build, replace=True)  # allowed when asked for
    other = ModelSpec(**{**spec.__dict__, "name": "no_builder"})
    with pytest.raises(ModelConfigError, match="needs a builder"):
        register_model(other)  # an unknown family and no builder
    bad_task = ModelSpec(**{**spec.__dict__, "name": "bad_task", "task": "counting"})
    with pytest.raises(ModelConfigError, match="unknown task"):
        register_model(bad_task, build)
    # Built-in models are registered the same way and still build.
    assert "fasterrcnn_mobilenet_v3_large_320_fpn" in registry.MODELS


def test_a_damaged_or_unsafe_checkpoint_is_named_without_torchs_unsafe_advice(tmp_path):
    """A text file as best.pt said "Re-running torch.load with weights_only set to False
    will likely succeed": advice to run a file's code, for a file that is not a pickle."""
    from studio.core.errors import StudioError
    from studio.ml.train.checkpoint import load_checkpoint

    garbage = tmp_path / "best.pt"
    garbage.write_text("garbage\n")
    with pytest.raises(StudioError) as info:
        load_checkpoint(garbage)
    text = str(info.value)
    assert text == f"{garbage}: not a readable checkpoint (damaged, or another kind of file)"
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": Payload()}, unsafe)
    with pytest.raises(StudioError) as info:
        load_checkpoint(unsafe)
    assert "refused to load: the file contains pickled Python code" in str(info.value)
    assert "Payload" in str(info.value) and "weights_only" not in str(info.value)

"""A plugin registering the tests' tiny models under plain names ("tiny_detector", ...).

tests/ml/conftest.py puts this folder on STUDIO_PLUGIN_PATH, so the models are known in
the test process, in spawned training processes and in torchrun's ranks alike, through
the same registry a user's plugin uses (names never import code).
"""

from __future__ import annotations

from typing import Any


def _registered(factory: Any, task: str) -> Any:
    """A registry builder around a conftest factory (which returns a BuiltModel or a module)."""

    def build(spec, num_classes, resize, pretrained, backbone_pretrained, options):
        built = factory(num_classes, image_size=resize.get("min_size"), **options)
        return getattr(built, "model", built)

    return build


def register(api: Any) -> None:
    from studio.ml.models import ModelSpec, register_model
    from tests.ml import conftest

    for name, factory, task in (
        ("tiny_detector", conftest.tiny_detector, "detection"),
        ("slow_tiny_detector", conftest.slow_tiny_detector, "detection"),
        ("tiny_mask_detector", conftest.tiny_mask_detector, "instance_segmentation"),
        ("broken_detector", conftest.broken_detector, "detection"),
    ):
        size = conftest.IMAGE_SIZE
        spec = ModelSpec(
            name=name,
            task=task,
            description="test model",
            feature_levels=("C3",),
            strides=(8,),
            resize={"min_size": size, "max_size": round(size * 4 / 3)},
            default_image_size=size,
            supports_pretrained=False,
            family="tiny",
        )
        register_model(spec, _registered(factory, task), replace=True)

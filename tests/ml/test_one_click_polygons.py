"""One click on a project whose shapes are all polygons, offline: the recipe's light
instance segmenter has no whole-model weights anywhere, so its "default" is its ImageNet
backbone, and without that file it starts from random init with a warning (it was
refused: "torchvision has no pretrained weights for maskrcnn_mobilenet_v3_large_fpn")."""

from __future__ import annotations

from studio.ml.run import preflight


def test_all_polygons_offline_trains_from_scratch_with_a_warning(project, tmp_path, monkeypatch):
    import torch.hub

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # empty cache
    monkeypatch.delenv("STUDIO_WEIGHTS_DIR", raising=False)
    project.delete_annotations([a.id for a in project.annotations() if a.kind == "box"])
    assert {a.kind for a in project.annotations()} == {"polygon"}
    cfg, _ = preflight.config_from_settings(project, {"device": "cpu"})
    assert cfg.model == "maskrcnn_mobilenet_v3_large_fpn" and cfg.weights == "default"
    full, backbone = preflight.needed_weights(cfg)
    assert full == [] and [a for a, _ in backbone] == ["mobilenet_v3_large"]
    report = preflight.check(project, cfg, online=lambda: False)
    assert report.ok, report.problems
    assert any("trains from scratch" in w for w in report.warnings), report.warnings
    assert (report.config.weights, report.config.backbone_weights) == ("none", "none")

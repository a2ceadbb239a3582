"""Plugins add formats that the CLI's import and export use; a broken one is reported."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args, env_path: Path | str, cwd: Path):
    import os

    env = dict(os.environ, STUDIO_PLUGIN_PATH=str(env_path))
    return subprocess.run([sys.executable, "-m", "studio", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_example_plugin_round_trips_boxes_through_the_cli(demo_project, tmp_path):
    out = tmp_path / "boxes.csv"
    r = _cli(
        "export", demo_project.path, "--format", "csv", out, env_path=ROOT / "plugins", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "image,class,x,y,w,h"
    assert len(lines) - 1 == demo_project.annotation_count()

    _cli("new", tmp_path / "q", env_path="", cwd=tmp_path)
    r = _cli("import", tmp_path / "q", "--format", "csv", out, "--images", demo_project.path,
             env_path=ROOT / "plugins", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    from studio.core.project import Project

    with Project.open(tmp_path / "q") as q:
        # Boxes of polygons come back as boxes: same count, same coordinates.
        assert q.annotation_count() == demo_project.annotation_count()
        got = sorted(tuple(round(v, 6) for v in a.bbox) for a in q.annotations())
    want = sorted(tuple(round(v, 6) for v in a.bbox) for a in demo_project.annotations())
    assert got == want


def test_broken_plugin_is_a_warning_not_a_crash(demo_project, tmp_path):
    plug = tmp_path / "plugs"
    plug.mkdir()
    (plug / "broken.py").write_text("def register(api):\n    raise RuntimeError('boom')\n")
    r = _cli(
        "export",
        demo_project.path,
        "--format",
        "coco",
        tmp_path / "a.json",
        env_path=plug,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "plugin broken" in r.stderr and "boom" in r.stderr


def test_unknown_format_names_the_available_ones(demo_project, tmp_path):
    r = _cli(
        "export", demo_project.path, "--format", "nope", tmp_path / "x", env_path="", cwd=tmp_path
    )
    assert r.returncode == 2
    assert "unknown export format 'nope'" in r.stderr and "coco" in r.stderr
    assert "Traceback" not in r.stderr


def _write_plugin(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(body)


def test_plugin_api_keeps_models_panels_and_layers(tmp_path, monkeypatch):
    from studio.core import formats, plugins

    _write_plugin(tmp_path, "many", (
        "class Spec:\n    name = 'toy_model'\n"
        "def register(api):\n"
        "    api.add_model(Spec())\n"
        "    api.add_panel('Toy', lambda window: None, area='bottom')\n"
        "    api.add_canvas_layer('toy', lambda: None)\n"
        "    api.add_format('toyfmt', writer=lambda snapshot, out: [])\n"
    ))  # fmt: skip
    monkeypatch.setenv(plugins.ENV_PATH, str(tmp_path))
    try:
        infos = plugins.load_plugins(reload=True)
        assert [(i.name, i.error) for i in infos] == [("many", None)]
        got = plugins.contributions()
        assert [m.spec.name for m in got.models] == ["toy_model"]
        assert [(p.title, p.area) for p in got.panels] == [("Toy", "bottom")]
        assert [c.name for c in got.canvas_layers] == ["toy"]
        assert "toyfmt" in formats.WRITERS
    finally:
        monkeypatch.setenv(plugins.ENV_PATH, "")
        plugins.load_plugins(reload=True)
    assert "toyfmt" not in formats.WRITERS and plugins.contributions().models == []


def test_plugin_that_fails_halfway_registers_nothing(tmp_path, monkeypatch):
    from studio.core import formats, plugins

    _write_plugin(tmp_path, "half", (
        "def register(api):\n"
        "    api.add_format('halffmt', writer=lambda snapshot, out: [])\n"
        "    api.add_panel('Half', lambda window: None)\n"
        "    api.add_panel('Bad', lambda window: None, area='nowhere')\n"
    ))  # fmt: skip
    monkeypatch.setenv(plugins.ENV_PATH, str(tmp_path))
    try:
        (info,) = plugins.load_plugins(reload=True)
        assert "panel area 'nowhere'" in info.error
        assert "halffmt" not in formats.WRITERS
        assert plugins.contributions().panels == []
    finally:
        monkeypatch.setenv(plugins.ENV_PATH, "")
        plugins.load_plugins(reload=True)


def test_example_panel_plugin_registers_a_panel(monkeypatch):
    from studio.core import plugins

    monkeypatch.setenv(plugins.ENV_PATH, str(ROOT / "plugins"))
    try:
        infos = plugins.load_plugins(reload=True)
        assert all(i.error is None for i in infos), infos
        assert [p.title for p in plugins.contributions().panels] == ["Label counts"]
    finally:
        monkeypatch.setenv(plugins.ENV_PATH, "")
        plugins.load_plugins(reload=True)

"""The README's commands are the product's front door: CI must run them exactly."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)
    return [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip()]


def test_ci_runs_the_readme_test_command_exactly():
    ci = [ln.strip() for ln in (ROOT / ".ci/run").read_text().splitlines()]
    test_cmds = [c for c in _readme_commands() if c.endswith("python -m pytest")]
    assert len(test_cmds) == 1, test_cmds
    assert test_cmds[0] in ci


def test_readme_start_command_installs_with_constraints_and_opens_the_demo():
    start = [c for c in _readme_commands() if c.endswith("studio --demo")]
    assert len(start) == 1, start
    assert "-c constraints.txt" in start[0]


def test_constraints_pin_the_known_good_torch_pair():
    pins = (ROOT / "constraints.txt").read_text()
    assert "torch==2.14.1" in pins and "torchvision==0.29.1" in pins

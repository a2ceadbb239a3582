"""Mixed precision: bfloat16 on a CUDA GPU that has it (no loss scaling), float16 with a
GradScaler on an older one, float32 elsewhere. Runs without a GPU: the device's answer
to "bfloat16?" is what is replaced. Whether the loss is scaled can only be seen with CUDA
(GradScaler turns itself off without): test_cuda.py checks it."""

from __future__ import annotations

import pytest
import torch

from studio.ml.run.process import create_run
from studio.ml.train.device import amp_dtype, precision_name
from studio.ml.train.messages import Started
from studio.ml.train.trainer import train_run
from tests.ml.conftest import tiny_config

CUDA = torch.device("cuda")


@pytest.mark.parametrize(("bf16", "expected"), [(True, torch.bfloat16), (False, torch.float16)])
def test_a_gpu_trains_in_bfloat16_where_it_can(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert amp_dtype(CUDA) is expected
    assert amp_dtype(CUDA, amp=False) is None
    assert amp_dtype(torch.device("cpu")) is None  # measured slower there
    assert precision_name(amp_dtype(CUDA)) == f"{'bfloat16' if bf16 else 'float16'} mixed"


def test_a_cpu_run_says_it_trains_in_float32(project):
    run = create_run(project, tiny_config(epochs=1))
    started: list[Started] = []
    train_run(run.dir, emit=lambda m: started.append(m) if isinstance(m, Started) else None)
    assert started[0].precision == "float32"

"""The GPU path, run where a CUDA GPU is (skipped elsewhere, so in CI): mixed precision
(bfloat16 where the GPU has it), channels_last weights, pinned batches, and a run that
trains, validates, stops, resumes and leaves a checkpoint that loads on the CPU.

benchmarks/gpu_check.sh runs these with the GPU's throughput benchmark."""

from __future__ import annotations

import math

import pytest
import torch

from studio.ml.cli import evaluate_run
from studio.ml.run.process import create_run
from studio.ml.train.callbacks import Callback
from studio.ml.train.messages import EpochMetrics, Iteration, Started
from studio.ml.train.trainer import LAST, load_checkpoint, train_run
from tests.ml.conftest import TINY, TINY_MASK, tiny_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class Probe(Callback):
    """Records what the trainer set up for the GPU when the run starts."""

    def __init__(self) -> None:
        self.seen: dict[str, object] = {}

    def on_fit_start(self, trainer) -> None:
        convs = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d)]
        self.seen.update(
            amp_dtype=trainer.amp_dtype,
            scaler=trainer.opt.scaler.is_enabled(),
            channels_last=all(
                c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs
            ),
            pinned=trainer.data.train_loader.pin_memory,
            device=next(trainer.model.parameters()).device.type,
        )


class Messages(list):
    def __call__(self, msg) -> None:
        self.append(msg)

    def of(self, kind) -> list:
        return [m for m in self if isinstance(m, kind)]


@pytest.mark.parametrize(
    ("model", "task", "metric"),
    [(TINY, "detection", "bbox/AP"), (TINY_MASK, "instance_segmentation", "segm/AP")],
)
def test_a_gpu_run_trains_in_mixed_precision_on_channels_last_pinned_batches(
    project, model, task, metric
):
    cfg = tiny_config(model=model, task=task, device="cuda", epochs=2, workers=2)
    run = create_run(project, cfg)
    msgs, probe = Messages(), Probe()
    result = train_run(run.dir, emit=msgs, callbacks=[probe])
    assert result.status == "finished"
    bf16 = torch.cuda.is_bf16_supported()
    assert probe.seen == {
        "amp_dtype": torch.bfloat16 if bf16 else torch.float16,
        "scaler": not bf16,  # loss scaling for float16 only
        "channels_last": True,
        "pinned": True,
        "device": "cuda",
    }
    started = msgs.of(Started)[0]
    assert started.device.startswith("cuda")
    assert started.precision == ("bfloat16 mixed" if bf16 else "float16 mixed")
    losses = [m.losses["loss"] for m in msgs.of(Iteration)]
    assert losses and all(math.isfinite(v) for v in losses)
    assert metric in msgs.of(EpochMetrics)[-1].metrics
    # The checkpoint is usable without the GPU.
    res = evaluate_run(project.path, run.id, "val", device="cpu")
    assert 0.0 <= res["bbox"]["AP50"] <= 1.0


def test_a_gpu_run_stops_and_resumes(project):
    cfg = tiny_config(device="cuda", epochs=2, workers=2)
    run = create_run(project, cfg)
    first = Messages()
    result = train_run(run.dir, emit=first, should_stop=lambda: len(first.of(Iteration)) >= 4)
    assert result.status == "stopped"
    assert load_checkpoint(run.dir / LAST)["iteration"] == 4
    second = Messages()
    result = train_run(run.dir, resume=True, emit=second)
    assert result.status == "finished"
    its = [m.iteration for m in second.of(Iteration)]
    assert its[0] == 5 and all(math.isfinite(m.losses["loss"]) for m in second.of(Iteration))

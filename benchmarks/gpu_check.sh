#!/usr/bin/env bash
# The GPU path checked in one go on a CUDA machine. On one H200 (2026-11-30) steps 1-3 took
# about 4 minutes and step 4 over 5: give it 10 (step 4 now primes each loop once, untimed).
#
#   bash benchmarks/gpu_check.sh [OUTDIR]        # from the repository root
#
# 1. what the machine has, and the precision Studio picks on it;
# 2. the GPU tests (tests/ml/test_cuda.py: bfloat16 or float16 mixed precision,
#    channels_last, pinned batches, stop and resume, a checkpoint that loads on the CPU);
# 3. one click on the demo project (`studio train DIR --time-budget 120` on the GPU,
#    offline: the default model starts from random init) and its AP50;
# 4. training throughput against the plain torchvision loop on the GPU, the same model and
#    data: Studio's GPU path against the textbook loop in float32 (the README's "aim 1.3x"),
#    then both in mixed precision (the engine's own overhead), each loop primed once.
#
# Needs python3 with a CUDA torch and torchvision, and Studio's other runtime dependencies
# (`pip install -e .`); Qt is not needed. Where pip cannot reach a registry, wheels in a
# folder .whl/ of the repository root are installed first (to /tmp/site). Every step's
# output is kept in OUTDIR (default $OUT, else /tmp/studio-gpu-check).
set -uo pipefail
out=${1:-${OUT:-/tmp/studio-gpu-check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0

echo "== 1. the machine" | tee "$out/1-machine.txt"
python3 - <<'EOF' 2>&1 | tee -a "$out/1-machine.txt" || status=1
import torch, torchvision
from studio.ml.train.device import amp_dtype, precision_name
print("torch", torch.__version__, "torchvision", torchvision.__version__)
print("GPU:", torch.cuda.get_device_name(0), "| bfloat16:", torch.cuda.is_bf16_supported())
print("Studio trains in", precision_name(amp_dtype(torch.device("cuda"))))
EOF

echo "== 2. the GPU tests" | tee "$out/2-tests.txt"
timeout 300 python3 -m pytest -q -p no:cacheprovider -o addopts="" \
    tests/ml/test_cuda.py tests/ml/test_precision.py tests/ml/test_reproducible.py \
    2>&1 | tee -a "$out/2-tests.txt" || status=1

echo "== 3. one click on the demo, 120 s on the GPU" | tee "$out/3-one-click.txt"
demo=$(mktemp -d)/demo
{
    python3 -m studio demo "$demo" >/dev/null &&
    start=$SECONDS &&
    timeout 400 python3 -m studio train "$demo" --time-budget 120 &&
    echo "wall $((SECONDS - start)) s for a budget of 120 s" &&
    python3 -m studio eval "$demo" --run 1
} 2>&1 | grep -v "it/s\]$" | tail -40 | tee -a "$out/3-one-click.txt" || status=1

echo "== 4. throughput against the plain loop" | tee "$out/4-throughput.txt"
for extra in "--fp32-reference" ""; do
    timeout 400 python3 benchmarks/bench_train.py --throughput --device cuda --amp $extra \
        --workers 4 --batch-size 8 --tp-images 128 --tp-size 640x480 --iters 40 --rounds 2 \
        2>&1 | tee -a "$out/4-throughput.txt" || status=1
done
exit $status

#!/usr/bin/env bash
# The GPU checks that wait for a CUDA node, in one go from the GPU bundle's folder (scripts/gpu-bundle.sh copies this
# there as check.sh; about 8 minutes on an H100, most of it writing the random 7B checkpoint): the demo trained on the
# GPU and on the node's CPU (their losses side by side), CudaTrainBenchmark's ~20M shape, the Guanaco-65B settings and
# the Llama-2-7B shape, each against the memory plan. Every step has its own time limit and the script goes on after
# a failure, so one call reports all it can.   ./check.sh [out-dir]
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/check-out}"
mkdir -p "$out"
cd "$here"
step() {
  local limit=$1; shift
  echo "=== [${SECONDS} s] $*"
  timeout -k 5 "$limit" "$@"
  echo "=== exit $?"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: no GPU seen"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
# TF32 off, so that the GPU's float32 losses are comparable with the CPU's
TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=0 step 300 ./run.sh train configs/demo.yaml device=cuda max_steps=60 plot_loss=false \
  output_dir="$out/demo-cuda"
step 200 ./run.sh train configs/demo.yaml device=cpu max_steps=60 plot_loss=false output_dir="$out/demo-cpu"
python3 - "$out" <<'PY'
import json, sys
def losses(run):
    try:
        with open(f"{sys.argv[1]}/{run}/metrics.jsonl") as f:
            return {r["step"]: r["loss"] for r in map(json.loads, f) if "loss" in r}
    except OSError:
        return {}
gpu, cpu = losses("demo-cuda"), losses("demo-cpu")
for step in sorted(set(gpu) | set(cpu)):
    g, c = gpu.get(step), cpu.get(step)
    diff = abs(g - c) if g is not None and c is not None else float("nan")
    print(f"demo step {step}: loss cuda {g} cpu {c} |difference| {diff:.2e}")
PY
step 120 ./run.sh cuda-bench small 3
if ! nvidia-smi > /dev/null 2>&1; then
  echo "no GPU here: the 65b and 7b shapes are skipped (they need a GPU's memory)"
  exit 0
fi
(while sleep 2; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; done) > "$out/memory-used.txt" &
sampler=$!
JAVA_OPTS="${JAVA_OPTS:--Xmx48g}" step 400 ./run.sh cuda-bench 65b 2
kill "$sampler"
echo "nvidia-smi memory.used during 65b, most: $(sort -n "$out/memory-used.txt" | tail -1) MiB"
step 300 ./run.sh cuda-bench 7b 2
echo "=== [${SECONDS} s] done"

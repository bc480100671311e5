#!/usr/bin/env bash
# Runs the conformance suite on a machine with a CUDA GPU: the CPU `torch` adapter beside every
# CUDA configuration (torch-cuda*, timm-cuda), the ci profile unless PROFILE names another,
# results (not a report) into $1/results.tgz plus the machine's facts in $1/env.txt.
# reports/samples/<gpu>/ holds what it wrote on a real GPU; `python -m reports
# reports/samples/<gpu>` builds the report from it.
# Usage: bash reports/samples/run-gpu.sh OUT_DIR [WORKERS] [PROFILE]
# NNSPEC_GPU_LIMIT=SECONDS interrupts pytest (SIGINT) past that time, so a run on lent device
# time still packs what finished (the manifest marks it incomplete).
set -uo pipefail
out=${1:?usage: run-gpu.sh OUT_DIR [WORKERS] [PROFILE]}
workers=${2:-$(nproc)}
profile=${3:-ci}
limit=()
[ -n "${NNSPEC_GPU_LIMIT:-}" ] && limit=(timeout -s INT -k 30 "$NNSPEC_GPU_LIMIT")
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), torch.cuda.get_device_name(0))"
  $py -m pip list 2>/dev/null | grep -i -E "^(torch|timm|numpy|hypothesis|pytest|pytest-xdist|ml.dtypes|onnx|onnxruntime|transformers|sympy) "
  nproc
} > "$out/env.txt" 2>&1
cat "$out/env.txt"
adapters=(--adapter torch)
for name in torch-cuda torch-cuda-tf32 torch-cuda-no-cudnn torch-cuda-deterministic \
  torch-cuda-sdpa-math torch-cuda-sdpa-flash torch-cuda-sdpa-efficient torch-cuda-sdpa-cudnn \
  timm-cuda; do
  adapters+=(--adapter "$name")
done
results=$(mktemp -d)/gpu-results
${limit[@]+"${limit[@]}"} $py -m pytest conformance -q -p no:cacheprovider -n "$workers" "${adapters[@]}" \
  --hypothesis-profile="$profile" --results-dir "$results" --no-report \
  --timeout=600 --timeout-method=thread -rfE 2>&1 | tee "$out/log.txt" | tail -80
status=${PIPESTATUS[0]}
tar czf "$out/results.tgz" -C "$(dirname "$results")" gpu-results
echo "pytest exit status $status"

#!/usr/bin/env bash
# Runs the rows of shared/reference/perf.md on PyTorch (Benchmarks/torch_bench.py, a copy of
# shared/reference/torch_bench.py with the 3D rows of issue 25 added) and on Distillery's runtime,
# alternating row by row in one session (absolute times drift by 20% on these
# machines; ratios are what to quote).
#
#   python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install 'torch==2.13.0+cpu' numpy
#   swift build -c release --product distill
#   TORCH_PYTHON=/tmp/torchvenv/bin/python Benchmarks/compare-torch.sh [rows...]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${TORCH_PYTHON:-python3}
bench=${TORCH_BENCH:-Benchmarks/torch_bench.py}
rows=${*:-s1_fwd s1_train s2_fwd s2_train t1_fwd t1_train kd_t1_s1 kd_t1_s1_cached s3d_fwd s3d_train t3d_fwd t3d_train}
# Every figure names its machine: the CPU, its ISA extensions and the BLAS kernels in use.
.build/release/distill bench --machine --threads 2
printf '%-9s %12s %12s %8s %10s %10s\n' row torch_ms distill_ms ratio torch_MiB distill_MiB
for row in $rows; do
  # The cached KD step is compared with PyTorch's live one (PyTorch has no teacher-output cache).
  t=$("$py" "$bench" --row "${row%_cached}" --threads 2)
  d=$(.build/release/distill bench --row "$row" --threads 2)
  tms=$(echo "$t" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["ms_median"])')
  trss=$(echo "$t" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["peak_rss_mib"])')
  dms=$(echo "$d" | cut -f2)
  drss=$(echo "$d" | cut -f5)
  ratio=$(awk -v a="$dms" -v b="$tms" 'BEGIN { printf "%.2f", a / b }')
  printf '%-9s %12s %12s %8s %10s %10s\n' "$row" "$tms" "$dms" "$ratio" "$trss" "$drss"
done

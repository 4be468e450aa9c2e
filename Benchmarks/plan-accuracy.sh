#!/usr/bin/env bash
# The plan against the run (issue 45). Each spec is planned (which measures this machine's
# training steps and forward passes, once, and keeps them), then run stage by stage on a
# fresh store, each stage in a process of its own as a Slurm job runs it (so each stage's
# recorded peak resident memory is its own), then planned again: every stage's recorded
# time and peak memory beside the prediction, with their ratios. Run it on an idle machine:
# other load slows the run, not the plan.
#
#   make bench-plan                       # the three specs below
#   Benchmarks/plan-accuracy.sh specs/quickstart.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
specs=${*:-specs/quickstart.yaml specs/quickstart-3d.yaml specs/phantom-organs.yaml}
work=${BENCH_PLAN_DIR:-.build/bench-plan}
distill=.build/release/distill
rm -rf "$work"
mkdir -p "$work"
# Every figure names its machine: the CPU, its ISA extensions and the BLAS kernels in use.
$distill bench --machine
for spec in $specs; do
  name=$(basename "$spec" .yaml)
  store="$work/$name"
  echo
  echo "== $spec"
  $distill plan "$spec" --store "$store" > "$work/$name.plan-before.txt"
  $distill plan "$spec" --store "$store" --format json > "$work/$name.plan.json"
  start=$(date +%s)
  for hash in $(python3 -c 'import json, sys; [print(s["hash"]) for s in json.load(open(sys.argv[1]))["stages"]]' "$work/$name.plan.json"); do
    $distill run --plan "$work/$name.plan.json" --stage "$hash" --store "$store" >> "$work/$name.run.log" 2>&1
  done
  end=$(date +%s)
  $distill plan "$spec" --store "$store" | tee "$work/$name.plan-after.txt" | sed -n '/^stage /,/^ran: /p' | grep -v '^              '
  echo "wall time, stage by stage: $((end - start)) s"
done

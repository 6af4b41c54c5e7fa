#!/usr/bin/env bash
# End-to-end benchmark: generate a BENCH_N-sample corpus (default 100,000),
# run pgrules with the dryrun plugin, then re-gate the same out dir from the
# cache. Prints samples/s and peak memory for both runs.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_N:-100000}
CONC=${BENCH_CONCURRENCY:-4}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make -s build
go run ./scripts/gencorpus -n "$N" -out "$work/corpus"
ls -lh "$work/corpus"

run() {
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  bin/pgrules run --provider dryrun --log-format json --concurrency "$CONC" \
    --plan "$work/corpus/prompt_plan_v1.jsonl" --drafts "$work/corpus/drafts_v1.jsonl" \
    --critiques "$work/corpus/critiques_v1.jsonl" --out-dir "$work/out" "$@" 2>"$work/$label.log" || true
  end=$(date +%s.%N)
  # pgrules logs its own peak RSS (getrusage) in its last line.
  local rss
  rss=$(grep -o '"peak_rss":"[0-9]* MB"' "$work/$label.log" | tail -1 | grep -o '[0-9]*')
  awk -v n="$N" -v s="$start" -v e="$end" -v rss="$rss" -v l="$label" \
    'BEGIN { printf "%-10s %7d samples in %6.1fs = %8.0f samples/s, peak RSS %s MB\n", l, n, e-s, n/(e-s), rss }'
  grep '"message":"run finished"' "$work/$label.log" | tail -1
}

run first
run regate --rules gates.yaml

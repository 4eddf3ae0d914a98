#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, one after the other, on the stable
# toolchain (libFuzzer without a sanitizer), and prints a line per target: executions, edge
# coverage, corpus size, peak RSS and whether it found a crash.
#
#   bash fuzz/run.sh 600                       # every target, 10 minutes each
#   bash fuzz/run.sh 60 sip_message sdp        # two targets, a minute each
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The corpus grows in fuzz/corpus/<target>/
# (kept between runs); crashes land in fuzz/artifacts/<target>/ and are replayed with
# `cargo fuzz run -s none -O <target> <file>`. A summary is appended to fuzz/results.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
python3 fuzz/seed.py >/dev/null
cargo fuzz build -s none -O --fuzz-dir fuzz

mkdir -p fuzz/logs
[[ -f fuzz/results.tsv ]] || printf 'date\ttarget\tseconds\texecs\tcov\tft\tcorpus\tpeak_rss_mb\tcrashes\n' >fuzz/results.tsv
status=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  log="fuzz/logs/$t.log"
  # -timeout: one input taking 10 s is a hang worth a report; -rss_limit_mb: an input that
  # makes the loader allocate gigabytes is a finding, not a reason to swap.
  set +e
  cargo fuzz run -s none -O --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
  set -e
  after=$(find "fuzz/artifacts/$t" -type f | wc -l)
  execs=$(grep -oP 'stat::number_of_executed_units:\s*\K\d+' "$log" | tail -1 || true)
  rss=$(grep -oP 'stat::peak_rss_mb:\s*\K\d+' "$log" | tail -1 || true)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(grep -oP 'cov: \K\d+' <<<"$last" || true)
  ft=$(grep -oP 'ft: \K\d+' <<<"$last" || true)
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  crashes=$((after - before))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$seconds" \
    "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "${rss:-?}" "$crashes" | tee -a fuzz/results.tsv
  if ((crashes > 0)); then
    status=1
    echo "  $t: new crash input(s) in fuzz/artifacts/$t/ — see $log" >&2
  fi
done
exit $status

#!/usr/bin/env bash
# Whole-process throughput of `hotdesk detect` against spandsp 0.0.6's dtmf_rx, side by side
# in one run, on one hour of 8 kHz 16-bit mono WAV; and peak memory (RSS) of each.
#
#   bash benches/spandsp/run.sh [RUNS]        (default 7 runs of each, alternating)
#
# Needs: a C compiler, libspandsp-dev, sox, GNU time (/usr/bin/time). The hour is one
# realistic minute repeated: 20 s of digital silence, 20 s of speech (Allison, the Asterisk
# prompt voice, from fixtures/talkoff), 20 s of keyed digits in noise (fixtures/edge), so the
# detector meets silence, talk-off material and keys in the proportions of a call.
# Prints each run's wall time and peak RSS, the medians, and the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-7}"
out=target/spandsp-bench
mkdir -p "$out"
cc -O2 -o "$out/dtmf_spandsp" benches/spandsp/dtmf_spandsp.c -lspandsp -lm
${CARGO:-cargo} build --release --quiet --bin hotdesk
if [[ ! -s "$out/hour.wav" ]]; then
  sox -n -r 8000 -c 1 -b 16 "$out/silence.wav" trim 0 20
  sox fixtures/talkoff/speech/asterisk_en_us_f_allison.wav -r 8000 -c 1 -b 16 "$out/speech.wav" trim 0 20
  sox fixtures/edge/edge_hotdesk_60ms_snr20.wav -r 8000 -c 1 -b 16 "$out/keys.wav" repeat 9 trim 0 20
  sox "$out/silence.wav" "$out/speech.wav" "$out/keys.wav" "$out/minute.wav"
  sox "$out/minute.wav" "$out/hour.wav" repeat 59
fi
echo "file: $out/hour.wav, $(soxi -D "$out/hour.wav") s, $(stat -c %s "$out/hour.wav") bytes"
# Warm the page cache, and check both find keys.
"$out/dtmf_spandsp" "$out/hour.wav" | awk '{print "spandsp digits:", length($2)}'
./target/release/hotdesk detect "$out/hour.wav" | awk '{print "hotdesk digits:", length($2)}'
measure() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
hot=(); span=(); hot_rss=(); span_rss=()
for ((i = 0; i < runs; i++)); do
  read -r t m < <(measure ./target/release/hotdesk detect "$out/hour.wav")
  hot+=("$t"); hot_rss+=("$m")
  read -r t m < <(measure "$out/dtmf_spandsp" "$out/hour.wav")
  span+=("$t"); span_rss+=("$m")
  echo "run $i: hotdesk ${hot[-1]} s ${hot_rss[-1]} KB, spandsp ${span[-1]} s ${span_rss[-1]} KB"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
h=$(median "${hot[@]}"); s=$(median "${span[@]}")
hr=$(median "${hot_rss[@]}"); sr=$(median "${span_rss[@]}")
awk -v h="$h" -v s="$s" -v hr="$hr" -v sr="$sr" 'BEGIN {
  printf "summary: hotdesk detect %.3f s (%.0f M samples/s, peak RSS %.1f MB); spandsp %.3f s (%.0f M samples/s, peak RSS %.1f MB); hotdesk is %.2fx as fast\n",
    h, 28.8 / h, hr / 1024, s, 28.8 / s, sr / 1024, s / h }'

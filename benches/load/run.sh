#!/usr/bin/env bash
# hotdesk load and capacity bench: builds the release binaries, copies them out of the target
# dir (so no cargo lock is held while the bench runs), then hands over to load.py.
# Every option of load.py can be given after the script's name; see README.md.
#
#   benches/load/run.sh                               # the default steps, ~10 min
#   benches/load/run.sh --steps "50 100" --overload-offered 0
#
# Environment: CARGO_TARGET_DIR (default ./target), SKIP_BUILD=1 to reuse $BIN_DIR,
# CARGO_LOCK=/tmp/cargo.lock to serialise with other cargo users of a shared target dir,
# OUT (results dir), KEEP_WORK=1 to keep the scratch dir (config, store, log, pcaps).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
stamp="$(date +%Y%m%d-%H%M%S)"
out="${OUT:-$here/results/$stamp}"
bin="${BIN_DIR:-$(mktemp -d /tmp/hotdesk-load-bin.XXXXXX)}"
work="$(mktemp -d /tmp/hotdesk-load-work.XXXXXX)"

for tool in sipp python3; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed (apt-get install sip-tester python3)" >&2; exit 2; }
done
command -v dumpcap >/dev/null || echo "run.sh: no dumpcap (tshark package): the on-the-wire cross-check is skipped" >&2
if [ "$(id -u)" != 0 ]; then
    echo "run.sh: sipp plays pcaps from a raw socket and dumpcap captures on lo: run as root" >&2
    exit 2
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    build=(cargo build --release --locked --bin hotdesk --example load_tool
           --message-format=json-render-diagnostics)
    if [ -n "${CARGO_LOCK:-}" ]; then build=(flock "$CARGO_LOCK" env CARGO_TARGET_DIR="$target" "${build[@]}"); fi
    # Cargo says where it put the executables (a wrapper may move the target dir).
    (cd "$repo" && CARGO_TARGET_DIR="$target" "${build[@]}") | python3 -c '
import json, shutil, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        shutil.copy2(m["executable"], sys.argv[1])
' "$bin"
    [ -x "$bin/hotdesk" ] && [ -x "$bin/load_tool" ] || { echo "run.sh: the build gave no binaries" >&2; exit 1; }
fi

cleanup() {
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "run.sh: scratch dir kept: $work" >&2; else rm -rf "$work"; fi
    if [ -z "${BIN_DIR:-}" ]; then rm -rf "$bin"; fi
}
trap cleanup EXIT

# More than a thousand sipp media threads, RTP sockets and raw sockets at once.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

python3 "$here/load.py" --bin-dir "$bin" --work "$work" --out "$out" "$@"

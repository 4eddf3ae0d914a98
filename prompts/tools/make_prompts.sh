#!/usr/bin/env bash
# Regenerates hotdesk's English prompt set (prompts/en/*.wav) from Debian's Asterisk core sounds
# (Allison Smith, CC-BY-SA-3.0) plus one espeak-ng sentence where no recording fits.
#
# Usage: prompts/tools/make_prompts.sh [PATH/TO/asterisk-core-sounds-en-wav_1.6.1-1_all.deb]
# Without an argument the pinned package is fetched with `apt-get download` (needs the Debian
# bookworm archive in sources). Needs: sox 14.4, espeak-ng 1.51, dpkg-deb, sha256sum.
#
# Deterministic: the input package is pinned by version and SHA-256, sox runs repeatable (-R)
# without dither (-D), and every cut point below is a fixed time in the original file. Re-running
# it produces byte-identical files.
#
# Cut points were chosen from each recording's 10 ms energy envelope: every cut sits in a
# plosive closure or fricative dip (20-30 dB below the surrounding vowels), and gets a 10 ms fade
# so the join does not click.
set -euo pipefail

PKG=asterisk-core-sounds-en-wav
VERSION=1.6.1-1
SHA256=2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d
ESPEAK_VOICE=en-us+f3
# Active speech level every prompt is brought to (RMS over the trimmed prompt, dBFS).
TARGET_DB=-20

here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/en"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

deb=${1:-}
if [[ -z "$deb" ]]; then
    (cd "$work" && apt-get download "$PKG=$VERSION" >/dev/null)
    deb=$(echo "$work"/${PKG}_*.deb)
fi
echo "$SHA256  $deb" | sha256sum -c --quiet - || {
    echo "unexpected package: $deb (want $PKG $VERSION)" >&2
    exit 1
}
dpkg-deb -x "$deb" "$work/x"
src="$work/x/usr/share/asterisk/sounds/en_US_f_Allison"
espeak-ng --version | grep -q '1\.51' || echo "warning: espeak-ng is not 1.51; output will differ" >&2

SOX=(sox -R -D -V1)
# Light trim: drop leading/trailing audio quieter than -50 dBFS, keep 20 ms of it either side.
TRIM=(silence 1 0.005 -50d reverse silence 1 0.005 -50d reverse pad 0.02 0.02)

# piece NAME FILE [START END]: one source recording (or a cut of it) as 8 kHz mono 16-bit.
piece() {
    local name=$1 file=$2
    if [[ $# -eq 4 ]]; then
        "${SOX[@]}" "$src/$file.wav" -r 8000 -c 1 -b 16 "$work/$name.wav" \
            trim "$3" "=$4" fade t 0.01 -0 0.01
    else
        "${SOX[@]}" "$src/$file.wav" -r 8000 -c 1 -b 16 "$work/$name.wav" "${TRIM[@]}"
    fi
}

# gap NAME SECONDS: a stretch of digital silence to join pieces with.
gap() {
    "${SOX[@]}" -n -r 8000 -c 1 -b 16 "$work/$1.wav" trim 0 "$2"
}

# emit ID PIECE...: concatenate pieces, trim, bring to the target level, write prompts/en/ID.wav.
emit() {
    local id=$1
    shift
    local inputs=()
    for p in "$@"; do inputs+=("$work/$p.wav"); done
    "${SOX[@]}" "${inputs[@]}" "$work/joined-$id.wav" "${TRIM[@]}"
    local rms
    rms=$(sox "$work/joined-$id.wav" -n stats 2>&1 | awk '/^RMS lev dB/ {print $4}')
    local gain
    gain=$(awk -v t="$TARGET_DB" -v r="$rms" 'BEGIN {printf "%.2f", t - r}')
    # -l: a limiter, so a gain-up never clips a peak.
    "${SOX[@]}" "$work/joined-$id.wav" "$out/$id.wav" gain -l "$gain"
}

rm -rf "$out"
mkdir -p "$out"

gap g30 0.03
gap g60 0.06
gap g250 0.25
gap g400 0.4

# "Please enter your extension, followed by the pound key." The head and tail come from the same
# take (agent-pass: "Please enter your | password | followed by the pound key"), so the prosody
# around the swapped word is Allison's own; the cut before "password" is its /p/ closure.
piece pass_head agent-pass 0 0.740
piece pass_tail agent-pass 1.740 3.285
piece extension vm-extension
emit enter_account pass_head g30 extension g250 pass_tail

piece agent_pass agent-pass
emit enter_pin agent_pass

# "Desk", cut from followme/status ("... not at their | desk; I will try ..."): the /d/ closure
# before it and the pause after it are the cut points.
piece desk followme/status 1.890 2.400
emit login_accepted_prefix desk

# "is now extension": "is now" from conf-now-muted ("The conference | is now | muted.", cut in
# the /s/ before and the /m/ closure after), then dir-multi3's "... extension ...", recorded with
# the rising, unfinished intonation of a word followed by a number.
piece is_now conf-now-muted 0.545 0.925
piece extension_cont dir-multi3
emit login_accepted_middle is_now g30 extension_cont

piece incorrect vm-incorrect
emit login_incorrect incorrect

piece pin_bad confbridge-pin-bad
piece try_later please-try-call-later
emit too_many_attempts pin_bad g400 try_later

# "I'm sorry. Please try your call again later.": the store cannot record a login right now.
piece im_sorry im-sorry
emit service_unavailable im_sorry g250 try_later

# "Logged off.", agent-loggedoff without its leading "Agent" (cut in the /t/-/l/ dip).
piece logged_off agent-loggedoff 0.440 1.456
emit phone_released logged_off

# No recording says anything close: synthesised.
"$(command -v espeak-ng)" -v "$ESPEAK_VOICE" -s 150 -w "$work/espeak-not-hotdesk.wav" \
    "This phone cannot be used for hot desking."
"${SOX[@]}" "$work/espeak-not-hotdesk.wav" -r 8000 -c 1 -b 16 "$work/not_hotdesk.wav" "${TRIM[@]}"
emit not_hotdesk_phone not_hotdesk

piece goodbye vm-goodbye
emit goodbye goodbye

# "D T M F test": the letters as Allison spells them, and "test" cut from demo-echodone
# ("The echo | test | has been completed": the /t/ closure before, the /h/ after).
for l in d t m f; do piece "letter_$l" "letters/$l"; done
piece test demo-echodone 0.935 1.255
emit dtmf_test letter_d letter_t letter_m letter_f g60 test

for d in 0 1 2 3 4 5 6 7 8 9 star pound; do
    piece "digit_src_$d" "digits/$d"
    case $d in
    star | pound) emit "$d" "digit_src_$d" ;;
    *) emit "digit_$d" "digit_src_$d" ;;
    esac
done

echo "wrote $(find "$out" -name '*.wav' | wc -l) prompts to $out ($(du -sh "$out" | cut -f1))"

#!/usr/bin/env bash
# Regenerates hotdesk's prompt sets (prompts/en, prompts/fr, prompts/es) from Debian's Asterisk
# core sounds (English and Mexican Spanish by Allison Smith, Canadian French by June Wallack, all
# CC-BY-SA-3.0), plus espeak-ng sentences where no recording fits.
#
# Usage: prompts/tools/make_prompts.sh [DIR]
# DIR holds the pinned packages (asterisk-core-sounds-{en,fr,es}-wav_1.6.1-1_all.deb). Without it
# they are fetched with `apt-get download` (needs the Debian bookworm archive in sources).
# Needs: sox 14.4, espeak-ng 1.51, dpkg-deb, sha256sum.
#
# Deterministic: the input packages are pinned by version and SHA-256, sox runs repeatable (-R)
# without dither (-D), and every cut point below is a fixed time in the original file. Re-running
# it produces byte-identical files.
#
# Cut points were chosen from each recording's 10 ms energy envelope and spectrogram, with word
# boundaries cross-checked (where it converged) by forced alignment against the transcript: every
# cut sits in a pause, a stop closure or a fricative/nasal dip, and gets a 10 ms fade so the join
# does not click.
set -euo pipefail

VERSION=1.6.1-1
declare -A SHA256=(
    [en]=2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d
    [fr]=8d4e1bc32ed5ba7fbda40841ca1825ed20cc6232724a473c90f8bb0e53e6073e
    [es]=9283a09a6d56fccdcc2bcfe86c48f0f844289cfbd46a3184d8785a6f7f569903
)
declare -A VOICE_DIR=([en]=en_US_f_Allison [fr]=fr_CA_f_June [es]=es_MX_f_Allison)
# Active speech level every prompt is brought to (RMS over the trimmed prompt, dBFS).
TARGET_DB=-20

here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

debs=${1:-}
if [[ -z "$debs" ]]; then
    debs="$work/debs"
    mkdir -p "$debs"
    for lang in en fr es; do
        (cd "$debs" && apt-get download "asterisk-core-sounds-$lang-wav=$VERSION" >/dev/null)
    done
fi
for lang in en fr es; do
    deb="$debs/asterisk-core-sounds-${lang}-wav_${VERSION}_all.deb"
    echo "${SHA256[$lang]}  $deb" | sha256sum -c --quiet - || {
        echo "unexpected package: $deb (want asterisk-core-sounds-$lang-wav $VERSION)" >&2
        exit 1
    }
    dpkg-deb -x "$deb" "$work/x"
done
espeak-ng --version | grep -q '1\.51' || echo "warning: espeak-ng is not 1.51; output will differ" >&2

SOX=(sox -R -D -V1)
# Light trim: drop leading/trailing audio quieter than -50 dBFS, keep 20 ms of it either side.
TRIM=(silence 1 0.005 -50d reverse silence 1 0.005 -50d reverse pad 0.02 0.02)

# language LANG: later pieces come from LANG's recordings and prompts go to prompts/LANG/.
language() {
    src="$work/x/usr/share/asterisk/sounds/${VOICE_DIR[$1]}"
    out="$here/$1"
    pieces="$work/pieces-$1"
    rm -rf "$out"
    mkdir -p "$out" "$pieces"
    gap g30 0.03
    gap g60 0.06
    gap g250 0.25
    gap g400 0.4
}

# piece NAME FILE [START END]: one source recording (or a cut of it) as 8 kHz mono 16-bit.
# END `-` cuts to the end of the recording.
piece() {
    local name=$1 file=$2
    if [[ $# -eq 4 ]]; then
        local cut=(trim "$3")
        [[ $4 != - ]] && cut+=("=$4")
        "${SOX[@]}" "$src/$file.wav" -r 8000 -c 1 -b 16 "$pieces/$name.wav" \
            "${cut[@]}" fade t 0.01 -0 0.01
    else
        "${SOX[@]}" "$src/$file.wav" -r 8000 -c 1 -b 16 "$pieces/$name.wav" "${TRIM[@]}"
    fi
}

# speak NAME VOICE TEXT: an espeak-ng sentence, where no recording says anything close.
speak() {
    "$(command -v espeak-ng)" -v "$2" -s 150 -w "$pieces/espeak-$1.wav" "$3"
    "${SOX[@]}" "$pieces/espeak-$1.wav" -r 8000 -c 1 -b 16 "$pieces/$1.wav" "${TRIM[@]}"
}

# gap NAME SECONDS: a stretch of digital silence to join pieces with.
gap() {
    "${SOX[@]}" -n -r 8000 -c 1 -b 16 "$pieces/$1.wav" trim 0 "$2"
}

# emit ID PIECE...: concatenate pieces, trim, bring to the target level, write prompts/LANG/ID.wav.
emit() {
    local id=$1
    shift
    local inputs=()
    for p in "$@"; do inputs+=("$pieces/$p.wav"); done
    "${SOX[@]}" "${inputs[@]}" "$pieces/joined-$id.wav" "${TRIM[@]}"
    local rms
    rms=$(sox "$pieces/joined-$id.wav" -n stats 2>&1 | awk '/^RMS lev dB/ {print $4}')
    local gain
    gain=$(awk -v t="$TARGET_DB" -v r="$rms" 'BEGIN {printf "%.2f", t - r}')
    # -l: a limiter, so a gain-up never clips a peak.
    "${SOX[@]}" "$pieces/joined-$id.wav" "$out/$id.wav" gain -l "$gain"
}

# digits: 0-9, star and pound, one whole recording each (the same file names in every language).
digits() {
    for d in 0 1 2 3 4 5 6 7 8 9 star pound; do
        piece "digit_src_$d" "digits/$d"
        case $d in
        star | pound) emit "$d" "digit_src_$d" ;;
        *) emit "digit_$d" "digit_src_$d" ;;
        esac
    done
}

# ---------------------------------------------------------------------------------------------
# English (Allison Smith, en_US)
language en

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
# the /s/-/z/ dip after "conference" and at the /m/ onset of "muted"), then dir-multi3's
# "... extension ...", recorded with the rising, unfinished intonation of a word followed by a
# number.
piece is_now conf-now-muted 0.770 1.150
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
speak not_hotdesk en-us+f3 "This phone cannot be used for hot desking."
emit not_hotdesk_phone not_hotdesk

piece goodbye vm-goodbye
emit goodbye goodbye

# "D T M F test": the letters as Allison spells them, and "test" cut from demo-echodone
# ("The echo | test | has been completed": the /t/ closure before, the /h/ after).
for l in d t m f; do piece "letter_$l" "letters/$l"; done
piece test demo-echodone 0.935 1.255
emit dtmf_test letter_d letter_t letter_m letter_f g60 test

# "Call limit reached.", simul-call-limit-reached without its leading "Simultaneous" (cut in
# the /k/ closure of "call"): the closest any recording comes to a call's time limit.
piece call_limit simul-call-limit-reached 1.000 -
emit call_time_limit call_limit

digits

# ---------------------------------------------------------------------------------------------
# French (June Wallack, fr_CA)
language fr

# "Composez votre numéro de poste suivi du dièse." "Composez votre" from agent-pass ("Composez
# votre | mot de passe suivi du dièse", cut in the dip between the /ʁ/ of "votre" and the /m/),
# then agent-newlocation's "Composez le nouveau | numéro de poste suivi du dièse | ou, ..." (cut
# at the /n/ after "nouveau" and in the pause before "ou").
piece votre_head agent-pass 0 0.775
piece numero_de_poste agent-newlocation 1.025 3.220
emit enter_account votre_head g30 numero_de_poste

piece agent_pass agent-pass
emit enter_pin agent_pass

# "Bureau", from followme/status ("... n'est pas à son | bureau, | je vais ..."): the /b/
# closure before it and the pause after it.
piece bureau followme/status 2.465 3.000
emit login_accepted_prefix bureau

# "est maintenant au poste": "est maintenant" from confbridge-conf-end ("La conférence | est
# maintenant | terminée.", cut in the /s/ closure before and the /t/ closure after), then "au
# poste" from vm-theperson ("La personne | au poste", after its pause).
piece est_maintenant confbridge-conf-end 0.765 1.430
piece au_poste vm-theperson 0.930 1.780
emit login_accepted_middle est_maintenant g30 au_poste

# "Échec à l'ouverture de session.", the first sentence of auth-incorrect (cut in the pause).
piece echec auth-incorrect 0 2.000
emit login_incorrect echec

piece pin_bad confbridge-pin-bad
piece try_later please-try-call-later
emit too_many_attempts pin_bad g400 try_later

piece im_sorry im-sorry
emit service_unavailable im_sorry g250 try_later

# "Vous n'êtes plus en ligne." (agent-loggedoff)
piece logged_off agent-loggedoff
emit phone_released logged_off

# "Cette fonctionnalité n'est pas disponible sur cette ligne.": a natural recording close
# enough to "this phone cannot be used for hot desking".
piece not_avail feature-not-avail-line
emit not_hotdesk_phone not_avail

piece goodbye vm-goodbye
emit goodbye goodbye

# "Test D T M F": "test" from demo-echodone ("Le | test | d'écho est maintenant terminé": the /t/
# closure before, the /t/-/d/ closure after), then the letters as June spells them.
piece test demo-echodone 0.280 0.585
for l in d t m f; do piece "letter_$l" "letters/$l"; done
emit dtmf_test test g60 letter_d letter_t letter_m letter_f

# "La limite d'appel a été atteinte.", simul-call-limit-reached ("La limite d'appel |
# simultané | a été atteinte") without "simultané": cut where its /s/ begins and at the
# /e/-/a/ transition into "a été".
piece limite_head simul-call-limit-reached 0 1.135
piece limite_tail simul-call-limit-reached 1.880 -
emit call_time_limit limite_head g60 limite_tail

digits

# ---------------------------------------------------------------------------------------------
# Spanish (Allison Smith, es_MX)
language es

# "Por favor ingrese su extensión seguida por la tecla de número." As in English: agent-pass
# ("Por favor ingrese su | contraseña | seguida por la tecla de número", cut in the /k/ closure
# before "contraseña" and in the pause after it) with vm-extension swapped in.
piece pass_head agent-pass 0 1.230
piece pass_tail agent-pass 2.000 -
piece extension vm-extension
emit enter_account pass_head g30 extension g60 pass_tail

piece agent_pass agent-pass
emit enter_pin agent_pass

# "Teléfono", from vm-from-phonenumber ("Mensaje del número de | teléfono", cut in the /t/
# closure).
piece telefono vm-from-phonenumber 2.150 -
emit login_accepted_prefix telefono

# "se encuentra ahora en la extensión": confbridge-muted ("Usted | se encuentra | ahora | en
# modo mudo", cut in the pause after "Usted" and in the nasal of "en modo"), then dir-multi3
# ("la extensión").
piece se_encuentra confbridge-muted 0.650 2.780
piece la_extension dir-multi3
emit login_accepted_middle se_encuentra g30 la_extension

piece incorrect vm-incorrect
emit login_incorrect incorrect

# The Spanish set has no "try again later"; the flow says goodbye after this.
piece pin_bad confbridge-pin-bad
emit too_many_attempts pin_bad

# "Lo siento. Por favor intente de nuevo.": "Lo siento" from invalid ("Lo siento, | esa es una
# extensión inválida ...", cut in the dip between the two words).
piece lo_siento invalid 0 0.610
piece try_again please-try-again
emit service_unavailable lo_siento g250 try_again

# "Desconectado.", agent-loggedoff without its leading "Agente" (cut at the start of the /d/
# closure).
piece desconectado agent-loggedoff 0.585 -
emit phone_released desconectado

speak not_hotdesk es-419+f3 "Este teléfono no se puede usar como puesto compartido."
emit not_hotdesk_phone not_hotdesk

piece goodbye vm-goodbye
emit goodbye goodbye

# "Prueba D T M F": "prueba" from demo-echodone ("La | prueba | del eco ha sido completada": the
# /p/ closure before, the /d/ closure after), then the letters.
piece prueba demo-echodone 0.190 0.585
for l in d t m f; do piece "letter_$l" "letters/$l"; done
emit dtmf_test prueba g60 letter_d letter_t letter_m letter_f

speak time_limit es-419+f3 "Su llamada ha alcanzado el límite de tiempo."
emit call_time_limit time_limit

digits

for lang in en fr es; do
    echo "wrote $(find "$here/$lang" -name '*.wav' | wc -l) prompts to $here/$lang ($(du -sh "$here/$lang" | cut -f1))"
done

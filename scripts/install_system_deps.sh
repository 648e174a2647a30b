#!/usr/bin/env bash
# System packages that the data pipeline needs beyond PyPI: espeak-ng and flite, which render the synthetic speech
# corpus (hf_binarize.data.synthetic) and the speech clips of tests/data; wordnet-base, fortunes-min and dict-gcide,
# the corpus text (hf_binarize.data.text_sources); ffmpeg, which transformers' ASR pipeline calls to decode an audio
# file path; festival with two voices, for the independent evaluation set only (scripts/make_independent_eval.py).
# Debian and Ubuntu (apt-get).
# Idempotent and quiet: it installs only what is missing, so a second run does nothing and needs no network.
set -euo pipefail

packages=(espeak-ng flite wordnet-base fortunes-min dict-gcide ffmpeg festival festvox-kdlpc16k festvox-us-slt-hts)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_system_deps.sh: no apt-get here; install ${missing[*]} with this system's package manager" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# apt's chatter (debconf notices included) is shown only when a step fails.
run_quietly() {
    local log
    if ! log=$("${sudo[@]}" "$@" 2>&1); then
        echo "$log" >&2
        echo "install_system_deps.sh: failed: $*" >&2
        exit 1
    fi
}
run_quietly apt-get update -qq
run_quietly apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install_system_deps.sh: installed ${missing[*]}"

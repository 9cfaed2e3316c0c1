#!/usr/bin/env bash
# Install everything tinykd needs on a Debian/Ubuntu machine: the Debian packages (data and
# the Cortex-M toolchain for the emulated board) and the Python package with its pinned stack.
# Safe to run again. Without root (or sudo) the Debian packages are skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc/g++: the firmware core is built and tested on the host. qemu-system-arm and the
# arm-none-eabi toolchain run the firmware on the emulated Cortex-M4 board (mps2_an386);
# libstdc++-arm-none-eabi-newlib has the C++ headers TFLM needs.
APT_PACKAGES=(
  dataset-fashion-mnist gcc g++
  qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib
  clang libclang-rt-dev
)

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="none"; fi
  fi
  if [ "$SUDO" = "none" ]; then
    echo "note: not root and no sudo: skipping Debian packages ${APT_PACKAGES[*]}" >&2
  else
    missing=()
    for package in "${APT_PACKAGES[@]}"; do
      dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
  fi
else
  echo "note: no apt-get: install Fashion-MNIST yourself (see README) or use --dataset digits" >&2
fi

python3 -m pip install -q -e ".[dev]"

# Text data for the sequence tasks (transformer sentiment, character LM): the vaderSentiment
# 3.3.2 source distribution (MIT) ships 23,703 human-rated sentences in
# additional_resources/hutto_ICWSM_2014.tar.gz. Fetched once, by package name, into the data
# directory; tinykd reads it from there and never downloads at run time.
DATA_DIR="${TINYKD_DATA_DIR:-$HOME/.cache/tinykd/data}"
VADER_SDIST="$DATA_DIR/vaderSentiment-3.3.2.tar.gz"
if [ ! -f "$VADER_SDIST" ]; then
  mkdir -p "$DATA_DIR"
  if ! python3 -m pip download -q --no-binary :all: --no-deps vaderSentiment==3.3.2 -d "$DATA_DIR"; then
    echo "note: could not fetch the vaderSentiment 3.3.2 sdist into $DATA_DIR; the text tasks will" \
      "ask for it (their tests use a committed slice)" >&2
  fi
fi

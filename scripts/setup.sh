#!/usr/bin/env bash
# One-time setup of navtune on a fresh Debian/Ubuntu machine (CPU is enough).
#  1. Debian GL/EGL libraries for the headless embedded simulator (skipped when present or not root)
#  2. a virtual environment in .venv (override with NAVTUNE_VENV)
#  3. torch==2.13.0 first (a CPU wheel; installing it first stops pip from pulling CUDA packages)
#  4. navtune itself, editable, with its test extras
# Never installs torchvision: its only wheel here is CUDA-built and breaks on import.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${NAVTUNE_VENV:-.venv}"
PY="${PYTHON:-python3}"

DEB_PKGS=(libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libglu1-mesa libfreetype6)
# The test suite also opens the HTML report in headless Chromium.
if [ "${NAVTUNE_TEST_DEPS:-0}" = "1" ]; then DEB_PKGS+=(chromium); fi
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${DEB_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "[setup] WARNING: missing Debian packages (${missing[*]}) and not root; the simulator needs them." >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  echo "[setup] installing torch==2.13.0 (CPU)"
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
fi
echo "[setup] installing navtune[test]"
"$VENV/bin/python" -m pip install -q -e ".[test]"
if "$VENV/bin/python" -c "import torchvision" >/dev/null 2>&1; then
  echo "[setup] removing torchvision (CUDA-only wheel here, breaks on import)"
  "$VENV/bin/python" -m pip uninstall -y -q torchvision
fi
echo "[setup] done: $VENV/bin/navtune"

#!/usr/bin/env bash
# The one test command (README and .ci/run): set up (idempotent), run the whole test suite, then run the
# exactness tests (`-m exact`: equal paths compared in float64) a second time under PyTorch's portable
# kernels (ATEN_CPU_CAPABILITY=default), as a CPU without AVX2/AVX-512 would: they must not depend on the
# kernels this machine picks.
# Extra arguments go to both pytest runs, e.g. `bash scripts/test.sh -k r2r` (the second run may then select
# no test, which is fine; without arguments an empty selection fails either run).
set -euo pipefail
cd "$(dirname "$0")/.."
NAVTUNE_TEST_DEPS=1 bash scripts/setup.sh
VENV="${NAVTUNE_VENV:-.venv}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYGLET_HEADLESS=1 TOKENIZERS_PARALLELISM=false

# run_pytest LABEL ALLOW_EMPTY ARGS...: pytest's exit code; "no tests collected" (5) fails unless ALLOW_EMPTY=1
run_pytest() {
  local label="$1" allow_empty="$2" rc
  shift 2
  set +e
  "$VENV/bin/python" -m pytest "$@"
  rc=$?
  set -e
  if [ "$rc" = "5" ]; then
    if [ "$allow_empty" = "1" ]; then
      echo "pytest selected no tests ($label) with the given arguments" >&2
      return 0
    fi
    echo "pytest collected no tests ($label): failing on purpose" >&2
    return 1
  fi
  return "$rc"
}

rc=0
run_pytest "whole suite" 0 -q "$@" || rc=$?
echo "== exactness tests again under ATEN_CPU_CAPABILITY=default (portable kernels)"
allow_empty=0
if [ "$#" -gt 0 ]; then allow_empty=1; fi
ATEN_CPU_CAPABILITY=default run_pytest "-m exact, portable kernels" "$allow_empty" -q -m exact "$@" || {
  r=$?
  if [ "$rc" = "0" ]; then rc=$r; fi
}
exit "$rc"

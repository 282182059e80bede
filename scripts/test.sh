#!/usr/bin/env bash
# The one test command (README and .ci/run): set up (idempotent), then run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k r2r`.
set -euo pipefail
cd "$(dirname "$0")/.."
NAVTUNE_TEST_DEPS=1 bash scripts/setup.sh
VENV="${NAVTUNE_VENV:-.venv}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYGLET_HEADLESS=1 TOKENIZERS_PARALLELISM=false
set +e
"$VENV/bin/python" -m pytest -q "$@"
rc=$?
set -e
if [ "$rc" = "5" ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"

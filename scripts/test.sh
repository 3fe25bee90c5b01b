#!/usr/bin/env bash
# `npm test`: the same set-up as `npm start`, then the whole suite on a real SoftHSM token.
# Each test file makes its own throw-away data dir (token + store) under $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-token
shopt -s globstar nullglob
files=(dist/test/**/*.test.js)
[ ${#files[@]} -gt 0 ] || { echo "[test] no test files found" >&2; exit 1; }
exec node --test --test-concurrency=2 "${files[@]}"

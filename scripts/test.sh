#!/usr/bin/env bash
# `npm test`: the same set-up as `npm start`, then the whole suite on a real SoftHSM token.
# Each test file makes its own throw-away data dir (token + store) under $TMPDIR, and the
# PostgreSQL tests their own server (test/helpers/postgres.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-token --postgres --browser
# Lint first: typescript-eslint's rules and the layers' import boundaries (eslint.config.mjs).
node_modules/.bin/eslint .
shopt -s globstar nullglob
# Only compiled tests whose source still exists: tsc never deletes what a removed test left in dist/.
files=()
for js in dist/test/**/*.test.js; do
  ts=${js#dist/}; ts=${ts%.js}.ts
  [ -f "$ts" ] && files+=("$js")
done
[ ${#files[@]} -gt 0 ] || { echo "[test] no test files found" >&2; exit 1; }

# Suites started at once on one machine (shared CI runners, several checkouts) each start dozens of
# servers and tokens; past two at a time they only starve each other. Take one of two slots.
slots=${TMPDIR:-/tmp}/p11kms-test-slots
mkdir -p "$slots"
waited=0
while :; do
  for i in 1 2; do
    exec 9>"$slots/$i"
    if flock -n 9; then break 2; fi
    exec 9>&-
  done
  [ "$waited" = 1 ] || echo "[test] two other test suites are running on this machine; waiting for one to end" >&2
  waited=1
  sleep 3
done
# Every answer the tests' servers send is recorded (test/helpers/openapi-recorder.ts), then checked
# against the OpenAPI document they serve; a documented route no test exercised fails the check.
recorded=$(mktemp -d "${TMPDIR:-/tmp}/p11kms-openapi-XXXXXX")
trap 'rm -rf "$recorded"' EXIT
status=0
# A test that hangs fails after ten minutes instead of holding the suite (and its slot) forever.
P11KMS_OPENAPI_RECORD=$recorded node --test --test-concurrency=2 --test-timeout=600000 "${files[@]}" 9>&- || status=$?
node dist/scripts/openapi-check.js "$recorded" 9>&- || status=1
exit "$status"

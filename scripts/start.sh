#!/usr/bin/env bash
# `npm start`: set up whatever is missing, then serve.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mapfile -t flags < <(grep -v '^#' scripts/server-node-flags | grep -v '^[[:space:]]*$')
exec node "${flags[@]}" dist/src/main.js

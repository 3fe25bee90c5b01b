#!/usr/bin/env bash
# `npm start`: set up whatever is missing, then serve.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/src/main.js

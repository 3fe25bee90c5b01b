#!/usr/bin/env bash
# Idempotent set-up shared by `npm start`, `npm test` and docker/Dockerfile:
# OS packages, npm dependencies, the TypeScript build and (for the embedded default) a dev token.
# Each step is skipped when its result is already there, so a second run takes seconds.
#   --no-token   stop before creating the dev token (the Docker build uses this)
#   --postgres   also install PostgreSQL's server binaries (the tests start their own server)
#   --browser    also Debian's chromium, which the console's browser tests drive (npm test)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[setup] $*" >&2; }

make_token=1
postgres=0
browser=0
for arg in "$@"; do
  case "$arg" in
    --no-token) make_token=0 ;;
    --postgres) postgres=1 ;;
    --browser) browser=1 ;;
    *) say "unknown argument $arg"; exit 2 ;;
  esac
done

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@";
  elif command -v sudo >/dev/null; then sudo "$@";
  else say "need root (or sudo) to run: $*"; exit 1; fi
}

apt_pkgs=()
# The embedded default needs SoftHSMv2; a real HSM (KMS_PKCS11_MODULE) brings its own module.
if [ -z "${KMS_PKCS11_MODULE:-}" ] && ! command -v softhsm2-util >/dev/null; then apt_pkgs+=(softhsm2); fi
command -v pkcs11-tool >/dev/null || apt_pkgs+=(opensc)
# Debian's postgresql puts initdb and pg_ctl under /usr/lib/postgresql/<version>/bin.
if [ "$postgres" = 1 ] && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null; then
  apt_pkgs+=(postgresql)
fi
# playwright-core drives the system's browser; it never downloads one of its own.
if [ "$browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then apt_pkgs+=(chromium); fi

deps_stamp=node_modules/.package-lock.json
need_deps=0
if [ ! -f "$deps_stamp" ] || [ package-lock.json -nt "$deps_stamp" ]; then need_deps=1; fi
# pkcs11js and better-sqlite3 are native addons built by node-gyp during `npm ci`.
if [ "$need_deps" = 1 ]; then
  for tool in make g++ python3; do
    command -v "$tool" >/dev/null || { apt_pkgs+=(make g++ python3); break; }
  done
fi

if [ ${#apt_pkgs[@]} -gt 0 ]; then
  say "installing Debian packages: ${apt_pkgs[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

if [ "$need_deps" = 1 ]; then
  # node-gyp downloads Node's headers unless told where they are; use the installed ones when the
  # Node installation ships them (official builds and images do), so no other host is needed.
  node_prefix=$(dirname "$(dirname "$(command -v node)")")
  if [ -z "${npm_config_nodedir:-}" ] && [ -z "$(npm config get nodedir 2>/dev/null | grep -v '^undefined$')" ] \
     && [ -f "$node_prefix/include/node/node_api.h" ]; then
    export npm_config_nodedir=$node_prefix
  fi
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

# Build only when the sources or dist/ changed since the last build. The stamp holds a hash of
# tsc's inputs (names and contents) and one of what it left in dist/; tsc's own incremental check
# trusts its build-info files instead, and so would not re-emit a dist file edited or deleted since.
inputs_hash() { { find src test scripts console/src -name '*.ts' -print0 | sort -z | xargs -0 sha256sum; sha256sum tsconfig.json console/tsconfig.json package-lock.json; } | sha256sum | cut -c1-64; }
outputs_hash() { { [ -d dist ] && find dist -name '*.js' -print0 | sort -z | xargs -0 -r sha256sum; } | sha256sum | cut -c1-64; }
stamp=dist/.build-stamp
built=$(cat "$stamp" 2>/dev/null || true)
if [ "$built" != "$(inputs_hash) $(outputs_hash)" ]; then
  # dist/ is not what the last build left: have tsc emit every file again.
  [ "${built#* }" = "$(outputs_hash)" ] || rm -f dist/.tsbuildinfo dist/console.tsbuildinfo
  say "building (tsc)"
  node_modules/.bin/tsc -p tsconfig.json
  # The console's browser code: its own tsconfig (DOM types, ES modules), output in dist/console.
  node_modules/.bin/tsc -p console/tsconfig.json
  # Outputs whose source is gone (a deleted test would still run).
  while IFS= read -r -d '' js; do
    rel=${js#dist/}
    case $rel in console/*) src=console/src/${rel#console/} ;; *) src=$rel ;; esac
    [ -f "${src%.js}.ts" ] || rm -f "$js" "$js.map"
  done < <(find dist -name '*.js' -print0)
  echo "$(inputs_hash) $(outputs_hash)" > "$stamp"
fi

if [ "$make_token" = 1 ]; then
  bash scripts/dev-token.sh
fi

#!/usr/bin/env bash
# Makes Node's C/C++ headers local for node-gyp, so that `npm ci` can build the native addons
# (pkcs11js, better-sqlite3) with nothing but the npm registry reachable.
#
# node-gyp downloads the headers from nodejs.org unless it is given --nodedir (npm_config_nodedir).
# Official node images already ship them in /usr/local/include/node; when they are missing or
# belong to another Node version, they are taken from the npm package node-linux-<arch>@<version>
# (the release tarball published on the npm registry). Prints nothing on success.
#   usage: docker/node-headers.sh [PREFIX]   (default /usr/local; then npm_config_nodedir=PREFIX)
set -euo pipefail
prefix=${1:-/usr/local}
version=$(node -p 'process.versions.node')
have=$(node -e '
  const h = require("fs").readFileSync(process.argv[1], "utf8");
  const v = (n) => (h.match(new RegExp("define NODE_" + n + "_VERSION (\\d+)")) || [])[1];
  console.log([v("MAJOR"), v("MINOR"), v("PATCH")].join("."));' "$prefix/include/node/node_version.h" 2>/dev/null || true)
[ "$have" = "$version" ] && exit 0

pkg="node-$(node -p 'process.platform + "-" + process.arch')@$version"
echo "[node-headers] no Node $version headers in $prefix/include/node; taking them from $pkg" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm pack --silent --pack-destination "$tmp" "$pkg" >/dev/null
tar -xzf "$tmp"/*.tgz -C "$tmp" package/include/node
mkdir -p "$prefix/include"
rm -rf "$prefix/include/node"
mv "$tmp/package/include/node" "$prefix/include/node"

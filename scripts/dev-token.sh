#!/usr/bin/env bash
# Creates the dev SoftHSM token (NSS softokn's with KMS_TOKEN_PROFILE=nss) under $KMS_DATA_DIR
# (default ./data in the repository) unless it exists:
#   $KMS_DATA_DIR/softhsm2.conf   from hsm-config/softhsm2.conf.template (its tokendir kept current)
#   $KMS_DATA_DIR/tokens/         the token's object files
#   $KMS_DATA_DIR/token.pin       user PIN, mode 0600 (KMS_PIN wins when set)
# Does nothing when KMS_PKCS11_MODULE selects a real HSM.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[dev-token] $*" >&2; }

if [ -n "${KMS_PKCS11_MODULE:-}" ]; then
  say "KMS_PKCS11_MODULE is set: using that HSM, no dev token"
  exit 0
fi

data_dir=${KMS_DATA_DIR:-./data}
label=${KMS_TOKEN_LABEL:-p11kms-dev}
mkdir -p "$data_dir/tokens"
chmod 700 "$data_dir"
data_dir=$(cd "$data_dir" && pwd)

random_pin() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }

# KMS_TOKEN_PROFILE=nss: NSS softokn's key database under $KMS_DATA_DIR/nss, set up over PKCS#11
# (src/hsm/binding-nss-token.ts); the same token.pin.
if [ "${KMS_TOKEN_PROFILE:-}" = nss ]; then
  pin_file="$data_dir/token.pin"
  if [ -z "${KMS_PIN:-}" ] && [ ! -s "$pin_file" ]; then
    (umask 077 && random_pin | tr -d '\n' > "$pin_file")
  fi
  exec node dist/src/hsm/binding-nss-token.js
fi

conf="$data_dir/softhsm2.conf"
if [ -f "$conf" ]; then
  # The data dir may have been moved or restored elsewhere: point the token directory at where it
  # is now and keep the rest (the service does the same before it opens the token).
  sed -i "s#^directories\.tokendir[[:space:]]*=.*#directories.tokendir = $data_dir/tokens#" "$conf"
else
  sed "s#^directories\.tokendir = @TOKENDIR@#directories.tokendir = $data_dir/tokens#" hsm-config/softhsm2.conf.template > "$conf"
fi
export SOFTHSM2_CONF="$conf"

if softhsm2-util --show-slots 2>/dev/null | grep -Eq "^[[:space:]]*Label:[[:space:]]+$label[[:space:]]*$"; then
  rm -f "$data_dir/token.so-pin"
  exit 0
fi

pin_file="$data_dir/token.pin"
if [ -n "${KMS_PIN:-}" ]; then
  pin=$KMS_PIN
elif [ -s "$pin_file" ]; then
  pin=$(cat "$pin_file")
else
  pin=$(random_pin)
  (umask 077 && printf '%s' "$pin" > "$pin_file")
fi
chmod 600 "$pin_file" 2>/dev/null || true
# The SO PIN could only re-initialise the token or reset the user PIN: a dev token is re-made
# instead, so it is never written down (an older dev token's file is removed).
so_pin=$(random_pin)
rm -f "$data_dir/token.so-pin"

say "initialising SoftHSM token '$label' in $data_dir/tokens"
softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin "$so_pin" >/dev/null

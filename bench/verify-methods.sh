#!/usr/bin/env bash
# Verify time per signing method on the same model: a raw-key bundle beside a certificate
# bundle (signing certificate + intermediate, chained to a root: the P-384 / RSA test PKI of
# model_signing's golden vectors in crates/rampart/tests/fixtures/model-transparency) and a
# Sigstore bundle (Fulcio-style certificate with SCT, Rekor-style entry with promise, inclusion
# proof and checkpoint — from rampart's private test Sigstore, since the public instance cannot
# be reached), for rampart and model_signing 1.1.1. model_signing cannot verify a Sigstore
# bundle offline (it refreshes Sigstore's TUF metadata first), so it has no Sigstore row; the
# public-good golden vector v1.1.0 is timed too, for reference (a model of the same size). The model is small (the shared tiny model) so that what the
# method adds — chain building, two RSA and one ECDSA link signatures — is not hidden behind
# hashing. hyperfine, warm cache; medians.
# Usage: bench/verify-methods.sh [RUNS]   Installs model-signing into target/bench/venv.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-30}
W=target/bench/verify-methods
rm -rf "$W" && mkdir -p "$W"
cargo build --release --quiet -p rampart
R=$PWD/target/release/rampart
VENV=target/bench/venv
if [ ! -x "$VENV/bin/model_signing" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet model-signing==1.1.1 pyopenssl
fi
MS=$PWD/$VENV/bin/model_signing
PKI=crates/rampart/tests/fixtures/model-transparency/keys/certificate
cp "$PKI/signing-key.pem" "$W/key.pem" && chmod 600 "$W/key.pem"
for m in key cert sigstore; do
  cp -r ../shared/interop/model-signing/tiny-model "$W/$m" && rm -f "$W/$m/model.sig"
done
export RAMPART_HOME=$W/home
"$R" -q sign "$W/key" --key "$W/key.pem"
"$R" -q sign "$W/cert" --key "$W/key.pem" --cert "$PKI/signing-key-cert.pem" --cert-chain "$PKI/int-ca-cert.pem"
cargo run --release --quiet -p rampart-crypto --features testing --example test_sigstore_bundle -- "$W/key/model.sig" "$W/sigstore"
mv "$W/sigstore/trusted_root.json" "$W/trusted_root.json"
G=crates/rampart/tests/fixtures/model-transparency/v1.1.0-sigstore
hyperfine -N -w 3 -r "$RUNS" --export-json "$W/results.json" \
  -n "rampart verify (key)" "$R -q verify $W/key --key $PKI/signing-key-pub.pem" \
  -n "rampart verify (certificate)" "$R -q verify $W/cert --cert-chain $PKI/ca-cert.pem" \
  -n "rampart verify (sigstore, private root)" "$R -q verify $W/sigstore --sigstore --identity bench@example.com --issuer https://issuer.invalid --trusted-root $W/trusted_root.json" \
  -n "rampart verify (sigstore, public-good vector)" "$R -q verify $G --ignore-paths $G/ignore-me --sigstore --identity stefanb@us.ibm.com --issuer https://sigstore.verify.ibm.com/oauth2" \
  -n "model_signing verify key" "$MS verify key $W/key --signature $W/key/model.sig --public_key $PKI/signing-key-pub.pem" \
  -n "model_signing verify certificate" "$MS verify certificate $W/cert --signature $W/cert/model.sig --certificate_chain $PKI/ca-cert.pem" \
  > /dev/null
python3 - "$W/results.json" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"]
base = statistics.median(r[0]["times"])
print("| command | median ms | IQR ms | ratio to rampart verify (key) |")
print("|---|---:|---:|---:|")
for x in r:
    t = x["times"]; q = statistics.quantiles(t, n=4)
    print(f"| {x['command']} | {statistics.median(t)*1000:.1f} | {q[0]*1000:.1f} – {q[2]*1000:.1f} | {statistics.median(t)/base:.2f}× |")
PY

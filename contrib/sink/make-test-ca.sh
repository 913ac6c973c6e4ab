#!/usr/bin/env bash
# Makes a throwaway TLS setup for tests in DIR (created if missing):
#
#   ca.key, ca.pem              a test CA (EC P-256, CA:true, keyCertSign), valid 2 days
#   server.key, server.pem      a server certificate issued by that CA for
#                               DNS:localhost, IP:127.0.0.1, IP:::1 (serverAuth)
#   untrusted.key, untrusted.pem  a self-signed certificate for the same names, NOT
#                               issued by the CA: a client trusting ca.pem must refuse it
#
#   bash contrib/sink/make-test-ca.sh DIR
#
# Idempotent: when DIR already holds a complete, consistent set that is valid for at
# least another hour, nothing is changed; otherwise the whole set is made anew. Safe to
# run concurrently on the same DIR (flock). Prints nothing on success; on failure it
# prints openssl's output and exits non-zero. Needs only bash and the openssl CLI
# (works with OpenSSL 3.0 as in Debian 12); it does not read the system's openssl.cnf.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
umask 077

exec 9<"$dir" # the lock is on DIR itself: no lock file left behind
flock 9

# Runs openssl quietly; shows its output and fails when it fails.
ossl() {
    local out
    if ! out=$(openssl "$@" 2>&1); then
        printf 'make-test-ca.sh: openssl %s failed:\n%s\n' "$*" "$out" >&2
        return 1
    fi
}

# True when the certificate's public key is the private key's.
key_matches() { # cert key
    [[ "$(openssl x509 -in "$1" -noout -pubkey 2>/dev/null)" == "$(openssl pkey -in "$2" -pubout 2>/dev/null)" ]]
}

is_complete() {
    local f
    for f in ca.key ca.pem server.key server.pem untrusted.key untrusted.pem; do
        [[ -s "$dir/$f" ]] || return 1
    done
    for f in ca server untrusted; do
        openssl x509 -in "$dir/$f.pem" -noout -checkend 3600 >/dev/null 2>&1 || return 1
        key_matches "$dir/$f.pem" "$dir/$f.key" || return 1
    done
    openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null 2>&1 || return 1
    ! openssl verify -CAfile "$dir/ca.pem" "$dir/untrusted.pem" >/dev/null 2>&1
}

if is_complete; then
    exit 0
fi

work=$(mktemp -d "$dir/.make-test-ca.XXXXXX")
trap 'rm -rf "$work"' EXIT

cat >"$work/openssl.cnf" <<'EOF'
[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = unused
[ ca_ext ]
basicConstraints       = critical, CA:true, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
[ server_ext ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ untrusted_ext ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier   = hash
EOF
cnf=$work/openssl.cnf

newkey() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
serial() { echo "0x7$(openssl rand -hex 15)"; } # positive, 128 bits

# The CA.
newkey "$work/ca.key"
ossl req -config "$cnf" -new -x509 -key "$work/ca.key" -sha256 -days 2 \
    -set_serial "$(serial)" -subj "/O=hookgate tests/CN=hookgate test CA" \
    -extensions ca_ext -out "$work/ca.pem"

# The server certificate issued by the CA.
newkey "$work/server.key"
ossl req -config "$cnf" -new -key "$work/server.key" -subj "/O=hookgate tests/CN=localhost" \
    -out "$work/server.csr"
ossl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -sha256 -days 2 \
    -set_serial "$(serial)" -extfile "$cnf" -extensions server_ext -out "$work/server.pem"

# A self-signed certificate for the same names, unknown to the CA.
newkey "$work/untrusted.key"
ossl req -config "$cnf" -new -x509 -key "$work/untrusted.key" -sha256 -days 2 \
    -set_serial "$(serial)" -subj "/O=hookgate tests (untrusted)/CN=localhost" \
    -extensions untrusted_ext -out "$work/untrusted.pem"

ossl verify -CAfile "$work/ca.pem" "$work/server.pem"

chmod 644 "$work"/*.pem
for f in ca.key ca.pem server.key server.pem untrusted.key untrusted.pem; do
    mv -f "$work/$f" "$dir/$f"
done

#!/usr/bin/env bash
# The one generator of the test PKI, for every wss:// test: tests/tls.rs (into
# a temporary directory), tests/interop (setup.sh) and tests/autobahn (run.sh).
# Writes into the directory given (default tests/interop/certs). Each file is
# one failure the client must name:
#   ca.pem / ca.key          the test CA the client is told to trust
#   other-ca.pem             an unrelated CA: trusting only it is "wrong CA"
#   good.pem / good.key      localhost, 127.0.0.1, ::1, signed by ca.pem
#   wronghost.pem / .key     signed by ca.pem, but for wrong.example only
#   expired.pem / .key       localhost, 127.0.0.1, ::1, signed by ca.pem,
#                            valid only on 2020-01-01 (`openssl ca` with dates)
# Keys are PKCS#8 PEM: RSA 2048, or P-256 with WSC_CERT_KEY=ec (the benchmark
# uses those, as a TLS server today would). Regenerated only when missing;
# delete the directory to start over. On failure, openssl's own message goes
# to stderr.
set -euo pipefail
case ${WSC_CERT_KEY:-rsa} in
rsa) newkey=(-newkey rsa:2048) usage=digitalSignature,keyEncipherment ;;
ec) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) usage=digitalSignature ;;
*) echo "gen-certs.sh: WSC_CERT_KEY must be rsa or ec" >&2; exit 2 ;;
esac
out=${1:-"$(cd "$(dirname "$0")" && pwd)/certs"}
[[ -f "$out/expired.pem" ]] && exit 0
mkdir -p "$out"
cd "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

quiet() { # runs openssl quietly (key generation prints progress), loudly on failure
  "$@" 2>"$tmp/stderr" || { cat "$tmp/stderr" >&2; return 1; }
}

ca() { # name, subject
  quiet openssl req -x509 "${newkey[@]}" -nodes -keyout "$1.key" -out "$1.pem" \
    -days 3650 -subj "$2" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
}

leaf() { # name, subjectAltName, extra openssl-ca date flags...
  local name=$1 san=$2
  shift 2
  quiet openssl req "${newkey[@]}" -nodes -keyout "$name.key" -out "$tmp/$name.csr" \
    -subj "/CN=wsc test $name"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=%s\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
    "$usage" "$san" >"$tmp/$name.ext"
  rm -rf "$tmp/db" && mkdir -p "$tmp/db" && : >"$tmp/db/index.txt"
  cat >"$tmp/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
database = $tmp/db/index.txt
new_certs_dir = $tmp/db
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = anything
rand_serial = yes
copy_extensions = none
[anything]
commonName = supplied
CNF
  quiet openssl ca -batch -notext -config "$tmp/ca.cnf" -in "$tmp/$name.csr" -out "$name.pem" \
    -extfile "$tmp/$name.ext" "$@"
}

ca ca "/CN=wsc test CA"
ca other-ca "/CN=wsc unrelated test CA"
leaf good "DNS:localhost,IP:127.0.0.1,IP:::1" -days 3650
leaf wronghost "DNS:wrong.example" -days 3650
leaf expired "DNS:localhost,IP:127.0.0.1,IP:::1" -startdate 20200101000000Z -enddate 20200102000000Z
rm -f other-ca.key
echo "test certificates written to $out"

#!/bin/sh
# tests/tls_certs.sh DIR: throwaway TLS material for the TLS tests, made at
# test time (no private key is ever committed). In DIR:
#   ca.pem ca.key      a test CA
#   srv.pem srv.key    a server cert for localhost/127.0.0.1/::1 signed by ca
#   ca2.pem ca2.key    a second CA (a client trusting only it refuses srv)
#   srv2.pem srv2.key  a server cert signed by ca2 (the rotation target)
#   other.key          a key that matches neither cert
#   exp.pem exp.key    as srv, signed by ca, but expired (notAfter is a
#                      day before notBefore: openssl x509 -days -1)
set -eu
dir=$1
cd "$dir"
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
for ca in ca ca2; do
    openssl req -x509 $ec -keyout $ca.key -out $ca.pem -days 2 \
        -subj "/CN=ioloop test $ca" 2>/dev/null
done
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n' > san.ext
for pair in srv:ca srv2:ca2; do
    srv=${pair%%:*}
    ca=${pair#*:}
    openssl req $ec -keyout $srv.key -out $srv.csr -subj /CN=localhost \
        2>/dev/null
    openssl x509 -req -in $srv.csr -CA $ca.pem -CAkey $ca.key \
        -CAcreateserial -out $srv.pem -days 2 -extfile san.ext 2>/dev/null
    rm -f $srv.csr
done
openssl req $ec -keyout exp.key -out exp.csr -subj /CN=localhost 2>/dev/null
openssl x509 -req -in exp.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out exp.pem -days -1 -extfile san.ext 2>/dev/null
rm -f exp.csr
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out other.key 2>/dev/null

#!/bin/sh
# Give pebble a fresh HTTPS identity, then run it in the foreground.
#
# Every start makes a small CA (/etc/pebble/tls/ca.pem) and signs a server
# certificate for the container's host name, <host name>.dns.podman (podman's
# network DNS answers both) and localhost. ACME clients trust pebble's API
# through ca.pem (certbot: REQUESTS_CA_BUNDLE). This CA only protects the API:
# the certificates pebble issues chain to a root of their own, made at every
# start too and published at https://<host>:15000/roots/0.
set -eu
tls=/etc/pebble/tls
name=$(hostname)
umask 077
mkdir -p "$tls"
cd "$tls"

openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -days 30 \
  -subj "/CN=channels-deploy pebble API test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout ca.key -out ca.pem 2>/dev/null

openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 \
  -subj "/CN=$name" -keyout key.pem -out server.csr 2>/dev/null
cat >server.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:$name,DNS:$name.dns.podman,DNS:localhost,IP:127.0.0.1
authorityKeyIdentifier=keyid
subjectKeyIdentifier=hash
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 30 \
  -extfile server.ext -out cert.pem 2>/dev/null
rm -f ca.key server.csr server.ext ca.srl
chmod 0644 ca.pem cert.pem

exec pebble -config /etc/pebble/pebble-config.json

#!/usr/bin/env bash
# What operators write today with the openssl CLI: one loop over a list of
# files, one or more processes per file, dispatched on the file name.
#
#     bench/openssl_loop.sh LIST     # LIST: one path per line
#
#   *.crt *.cer *.cert   openssl x509 -noout -enddate -in F
#   *.pem (bundles)      openssl storeutl -noout -text -certs F | grep 'Not After'
#   *.der                openssl x509 -inform DER -noout -enddate -in F
#   *.p12 *.pfx          openssl pkcs12 -in F -nokeys -passin pass: | openssl x509 -noout -enddate
#   *.kubeconfig         per *-data field: base64 -d | openssl x509 -noout -enddate;
#                        per token: its payload, base64url-decoded, grep '"exp"'
#   *.jwt *.token        the payload, base64url-decoded, grep '"exp"'
#
# Prints one line per credential; the number of credentials goes to stderr
# as `credentials: K`.
set -uo pipefail

jwt_exp() {
  local p
  p=$(cut -d. -f2 <<<"$1" | tr '_-' '/+')
  while (( ${#p} % 4 )); do p+="="; done
  base64 -d <<<"$p" | grep -o '"exp":[0-9]*'
}

while IFS= read -r f; do
  case $f in
    *.crt | *.cer | *.cert) openssl x509 -noout -enddate -in "$f" ;;
    *.pem) openssl storeutl -noout -text -certs "$f" | grep 'Not After' ;;
    *.der) openssl x509 -inform DER -noout -enddate -in "$f" ;;
    *.p12 | *.pfx) openssl pkcs12 -in "$f" -nokeys -passin pass: | openssl x509 -noout -enddate ;;
    *.kubeconfig)
      grep -E '(certificate-authority|client-certificate)-data:' "$f" | awk '{print $2}' |
        while read -r data; do base64 -d <<<"$data" | openssl x509 -noout -enddate; done
      grep -E '^ *token:' "$f" | awk '{print $2}' | while read -r t; do jwt_exp "$t"; done
      ;;
    *.jwt | *.token) jwt_exp "$(cat "$f")" ;;
  esac
done <"$1" | awk '{ print } /notAfter=|Not After|"exp"/ { n++ } END { print "credentials: " n + 0 > "/dev/stderr" }'

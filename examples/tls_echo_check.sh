#!/usr/bin/env bash
# Drives examples/tls_echo with `openssl s_client`: a self-signed certificate made now, four
# clients at once each sending lines and reading them back over TLS, then SIGTERM, which must
# stop the server with status 0.
#
# Usage: tls_echo_check.sh PATH/TO/tls_echo
set -uo pipefail
exe=$1
if ! command -v openssl >/dev/null; then
    echo "tls_echo_check: the openssl command is not installed (Debian: openssl): skipped"
    exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/tls_echo.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null || { echo "openssl req failed"; exit 1; }
"$exe" "$dir/cert.pem" "$dir/key.pem" 127.0.0.1 0 2>"$dir/server.err" &
pid=$!
port=
for _ in $(seq 200); do
    port=$(sed -n 's/^tls_echo: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/server.err")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { echo "the server did not start:"; cat "$dir/server.err"; exit 1; }

clients=()
for c in 1 2 3 4; do
    : >"$dir/want$c"
    for l in 1 2 3; do echo "client $c, line $l" >>"$dir/want$c"; done
    # lines a little apart, and time for the last echo before stdin ends
    (while read -r line; do echo "$line"; sleep 0.1; done <"$dir/want$c"; sleep 1) |
        timeout 20 openssl s_client -connect "127.0.0.1:$port" -quiet -no_ign_eof \
            >"$dir/got$c" 2>"$dir/client$c.err" &
    clients+=($!)
done
rc=0
for c in 1 2 3 4; do
    wait "${clients[$((c - 1))]}"
    if ! cmp -s "$dir/want$c" "$dir/got$c"; then
        echo "client $c: echoes differ"
        diff "$dir/want$c" "$dir/got$c"
        cat "$dir/client$c.err"
        rc=1
    fi
done

kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
wait "$pid"
status=$?
pid=
if [ "$status" -ne 0 ]; then
    echo "the server exited with status $status after SIGTERM"
    cat "$dir/server.err"
    rc=1
fi
[ "$rc" -eq 0 ] && echo "tls_echo_check: 4 clients over TLS, all echoes right, clean stop on SIGTERM"
exit "$rc"

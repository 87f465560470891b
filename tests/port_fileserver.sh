#!/usr/bin/env bash
# The porting guide's pair, driven by curl: the thread-per-connection file server and its
# asyncstd port must answer every request the same, byte for byte.
# Usage: port_fileserver.sh THREADS_SERVER ASYNC_SERVER
set -uo pipefail
if ! command -v curl >/dev/null; then
    echo "curl is not installed (apt-get install curl): cannot drive the servers" >&2
    exit 77 # meson's "skipped"; .ci/run installs curl, so CI never skips
fi
root=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$root"' EXIT
head -c 1024 /dev/urandom >"$root/small.bin"
head -c $((3 * 1024 * 1024 + 7)) /dev/urandom >"$root/big.bin"
mkdir "$root/dir"
: >"$root/empty"
failed=0
check() { # what expected actual
    if [ "$2" != "$3" ]; then
        echo "FAIL $1: expected '$2', got '$3'" >&2
        failed=$((failed + 1))
    fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

for server in "$1" "$2"; do
    port=$(free_port)
    "$server" 127.0.0.1 "$port" "$root" &
    pids+=($!)
    url=http://127.0.0.1:$port
    for _ in $(seq 100); do curl -sf -o /dev/null "$url/small.bin" && break; sleep 0.05; done
    name=${server##*/}
    for f in small.bin big.bin empty; do
        curl -sf -o "$root/got" "$url/$f"
        cmp -s "$root/got" "$root/$f" || check "$name GET $f" same different
    done
    check "$name 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$url/missing")"
    check "$name dir" 403 "$(curl -s -o /dev/null -w '%{http_code}' "$url/dir")"
    check "$name dotdot" 403 "$(curl --path-as-is -s -o /dev/null -w '%{http_code}' "$url/../etc/passwd")"
    check "$name POST" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/small.bin")"
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'NONSENSE\r\n\r\n' >&3
    check "$name malformed" "HTTP/1.1 400 Bad Request" "$(head -1 <&3 | tr -d '\r')"
    exec 3<&-
    check "$name HEAD length" "Content-Length: 1024" \
        "$(curl -sI "$url/small.bin" | tr -d '\r' | grep Content-Length)"
    # keep-alive: three requests on one connection
    check "$name keep-alive" 1 "$(curl -s -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects}\n' \
        "$url/small.bin" "$url/small.bin" "$url/small.bin" | awk '{n += $1} END {print n}')"
    # 100 parallel fetches of the big file
    seq 100 | xargs -P 50 -I{} sh -c "curl -sf '$url/big.bin' | cmp -s - '$root/big.bin' || echo bad" \
        >"$root/par"
    check "$name parallel" 0 "$(grep -c bad "$root/par")"
done
[ "$failed" -eq 0 ] && echo "ok: both servers answered alike"
exit $((failed > 0))

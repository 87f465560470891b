#!/usr/bin/env bash
# Drives examples/httpd with curl: byte-exact bodies (cmp) from an empty file to a 100 MB one,
# HEAD, Content-Type, single byte ranges (206, 416) and several (200), If-Modified-Since (304),
# a directory's index.html, a generated listing with names that need escaping, the errors
# (400, 403, 404, 405 with Allow, 414, 431), path traversal through "..", percent-encoding and
# symlinks (refused) next to a symlink inside ROOT (served), keep-alive, HTTP/1.0, pipelined
# requests, a client that stops reading (cut off by the send timeout), 200 parallel fetches,
# a clean stop on SIGTERM, and a short wrk run that must show a
# nonzero rate with no socket errors and no non-2xx answers.
#
#     tests/httpd_curl.sh [--no-bench] PATH/TO/httpd
#
# $HTTPD_SERVER_WRAP, if set, is put in front of the server (CI: .ci/valgrind-check).
# Exits 77 (meson's "skipped") when curl is not installed; wrk's part is skipped (with a
# message) when wrk is absent. Bounded: every client call has a time limit.
set -uo pipefail

bench=1
if [ "${1:-}" = "--no-bench" ]; then
    bench=0
    shift
fi
server=${1:?usage: httpd_curl.sh [--no-bench] PATH/TO/httpd}
if ! command -v curl >/dev/null; then
    echo "SKIP: curl not found (apt-get install curl)"
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/httpd_curl.XXXXXX")
root=$work/root
pid=        # what we started: the server, or the wrapper around it
server_pid= # the server itself, from its first line (under a wrapper, another process)
cleanup() { # after a failure: SIGTERM, and SIGKILL if that did not stop it within 5 s
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
        timeout 5 tail --pid="$pid" -f /dev/null ||
            kill -KILL "$pid" ${server_pid:+"$server_pid"} 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    echo "--- server log:"
    cat "$work/log"
    exit 1
}
checks=0
check() { # WHAT EXPECTED ACTUAL
    [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
    checks=$((checks + 1))
}

# ---- the tree to serve
mkdir -p "$root/idx" "$root/list/sub" "$root/deep/er" "$root/sp ace"
printf 'hello, world\n' >"$root/hello.txt"
: >"$root/empty.bin"
head -c 1024 /dev/urandom >"$root/1k.bin"
head -c $((1024 * 1024 + 13)) /dev/urandom >"$root/1m.bin"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$root/100m.bin"
printf '<p>index</p>\n' >"$root/idx/index.html"
printf 'tricky\n' >"$root/list/a<b>&\"c'.txt"
printf 'spaced\n' >"$root/list/sp ace.txt"
printf 'deep\n' >"$root/deep/er/file.txt"
mkfifo "$root/fifo"
printf 'secret\n' >"$work/secret.txt"  # outside ROOT
ln -s ../secret.txt "$root/out-rel"    # relative, leads out
ln -s "$work/secret.txt" "$root/out-abs"
ln -s "$work" "$root/out-dir"           # a directory outside
ln -s hello.txt "$root/in-link"         # stays inside: served
ln -s ../hello.txt "$root/deep/up-link" # goes up, but stays inside: served

# ---- start on port 0 and read the port from the server's first line; a send that makes no
# progress for 5 s closes its connection (60 s by default), long enough for a loaded machine
HTTPD_SEND_TIMEOUT_MS=5000 ${HTTPD_SERVER_WRAP:-} "$server" 127.0.0.1 0 "$root" 2>"$work/log" &
pid=$!
port=
for _ in $(seq 600); do
    port=$(sed -n 's/^httpd: listening on .* port \([0-9]*\),.*/\1/p' "$work/log")
    server_pid=$(sed -n 's/^httpd: listening on .*(pid \([0-9]*\))$/\1/p' "$work/log")
    [ -n "$port" ] && [ -n "$server_pid" ] && break
    kill -0 "$pid" 2>/dev/null || fail "the server exited at start"
    sleep 0.1
done
[ -n "$port" ] || fail "the server did not start within 60 s"
url=http://127.0.0.1:$port
echo "server on port $port"

c() { timeout 30 curl -s "$@"; }
code() { c -o /dev/null -w '%{http_code}' "$@"; }
header() { # NAME CURL-ARGS...: a response header's value (HEAD of the head)
    local name=$1
    shift
    c -D - -o /dev/null "$@" | tr -d '\r' | sed -n "s/^$name: //Ip" | head -1
}
same() { # WHAT FILE CURL-ARGS...: the body is FILE, byte for byte
    local what=$1 file=$2
    shift 2
    c -o "$work/got" "$@" || fail "$what: curl failed"
    cmp -s "$work/got" "$file" || fail "$what: body differs from $file"
    checks=$((checks + 1))
}
raw() { # REQUEST-BYTES: what the server answers on one connection (it must close it)
    timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; printf '$1' >&3; cat <&3"
}

# ---- whole files, byte for byte
for f in hello.txt empty.bin 1k.bin 1m.bin 100m.bin; do
    same "GET $f" "$root/$f" "$url/$f"
done
check "GET status" 200 "$(code "$url/1k.bin")"
check "Content-Length" 1048589 "$(header Content-Length "$url/1m.bin")"
check "type .txt" "text/plain; charset=utf-8" "$(header Content-Type "$url/hello.txt")"
check "type .html" "text/html; charset=utf-8" "$(header Content-Type "$url/idx/index.html")"
check "type other" "application/octet-stream" "$(header Content-Type "$url/1k.bin")"
same "GET nested" "$root/deep/er/file.txt" "$url/deep/er/file.txt"

# ---- HEAD: the GET's headers, no body
check "HEAD length" 1024 "$(header Content-Length -I "$url/1k.bin")"
check "HEAD no body" 0 "$(c -I -o /dev/null -w '%{size_download}' "$url/1k.bin")"

# ---- ranges
size=$(stat -c %s "$root/1m.bin")
tail -c +11 "$root/1m.bin" | head -c 10 >"$work/want"
same "Range 10-19" "$work/want" -H 'Range: bytes=10-19' "$url/1m.bin"
check "Range 206" 206 "$(code -H 'Range: bytes=10-19' "$url/1m.bin")"
check "Content-Range" "bytes 10-19/$size" "$(header Content-Range -H 'Range: bytes=10-19' "$url/1m.bin")"
tail -c 100 "$root/1m.bin" >"$work/want"
same "Range -100" "$work/want" -H 'Range: bytes=-100' "$url/1m.bin"
tail -c +1001 "$root/1m.bin" >"$work/want"
same "Range 1000-" "$work/want" -H 'Range: bytes=1000-' "$url/1m.bin"
same "Range past the end, clamped" "$work/want" -H "Range: bytes=1000-$((size * 2))" "$url/1m.bin"
tail -c +$((50 * 1024 * 1024 + 1)) "$root/100m.bin" >"$work/want"
same "Range 50M- of 100M" "$work/want" -H "Range: bytes=$((50 * 1024 * 1024))-" "$url/100m.bin"
check "Range unsatisfiable" 416 "$(code -H "Range: bytes=$size-" "$url/1m.bin")"
check "416 Content-Range" "bytes */$size" "$(header Content-Range -H "Range: bytes=$size-" "$url/1m.bin")"
check "Range -0" 416 "$(code -H 'Range: bytes=-0' "$url/1m.bin")"
same "several ranges: whole file" "$root/1m.bin" -H 'Range: bytes=0-1,5-9' "$url/1m.bin"
check "several ranges: 200" 200 "$(code -H 'Range: bytes=0-1,5-9' "$url/1m.bin")"
same "malformed range: whole file" "$root/1k.bin" -H 'Range: bytes=9-5' "$url/1k.bin"

# ---- If-Modified-Since
lm=$(header Last-Modified "$url/hello.txt")
[[ "$lm" =~ ^(Mon|Tue|Wed|Thu|Fri|Sat|Sun),\ [0-9]{2}\ [A-Z][a-z]{2}\ [0-9]{4}\ [0-9]{2}:[0-9]{2}:[0-9]{2}\ GMT$ ]] ||
    fail "Last-Modified not an IMF-fixdate: '$lm'"
check "Last-Modified is the mtime" "$(date -u -r "$root/hello.txt" '+%a, %d %b %Y %H:%M:%S GMT')" "$lm"
check "IMS same date" 304 "$(code -H "If-Modified-Since: $lm" "$url/hello.txt")"
check "IMS 304 empty" 0 "$(c -o /dev/null -w '%{size_download}' -H "If-Modified-Since: $lm" "$url/hello.txt")"
check "IMS older" 200 "$(code -H 'If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT' "$url/hello.txt")"
check "IMS garbage" 200 "$(code -H 'If-Modified-Since: yesterday' "$url/hello.txt")"
check "IMS in the future" 200 "$(code -H 'If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT' "$url/hello.txt")"

# ---- directories
same "index.html" "$root/idx/index.html" "$url/idx/"
check "no slash: 301" 301 "$(code "$url/idx")"
check "no slash: Location" "/idx/" "$(header Location "$url/idx")"
check "no slash: Location encoded" "/sp%20ace/" "$(header Location "$url/sp%20ace")"
check "ROOT as /.: Location" "/" "$(header Location --path-as-is "$url/%2e")"
check "no slash: the query kept" "/idx/?a=1&b=%2F" "$(header Location "$url/idx?a=1&b=%2F#frag")"
check "a file with a slash" 404 "$(code "$url/hello.txt/")"
c -o "$work/listing" "$url/list/"
grep -qF '<a href="a%3Cb%3E%26%22c%27.txt">a&lt;b&gt;&amp;&quot;c&#39;.txt</a>' "$work/listing" ||
    fail "listing: the tricky name is not escaped right: $(cat "$work/listing")"
grep -qF '<a href="sub/">sub/</a>' "$work/listing" || fail "listing: no sub/"
grep -qF 'sp%20ace.txt' "$work/listing" || fail "listing: no sp%20ace.txt"
grep -q '<a href="[^"]*[<>&]' "$work/listing" && fail "listing: raw markup in a link"
checks=$((checks + 4))
same "a listed name, fetched" "$root/list/a<b>&\"c'.txt" "$url/list/a%3Cb%3E%26%22c%27.txt"
c -o "$work/got" "$url/"
grep -qF '<a href="hello.txt">hello.txt</a>' "$work/got" || fail "root listing: no hello.txt"

# ---- errors
check "404" 404 "$(code "$url/missing")"
check "404 below a file" 404 "$(code "$url/hello.txt/x")"
check "403 fifo" 403 "$(code "$url/fifo")"
check "405" 405 "$(code -X POST "$url/hello.txt")"
check "405 Allow" "GET, HEAD" "$(header Allow -X DELETE "$url/hello.txt")"
check "400 bad escape" 400 "$(code "$url/%zz")"
check "400 NUL" 400 "$(code "$url/hello.txt%00.png")"
check "414" 414 "$(code "$url/$(head -c 6000 /dev/zero | tr '\0' a)")"
check "431" 431 "$(code -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "$url/hello.txt")"
check "400 garbage" "HTTP/1.1 400 Bad Request" "$(raw 'NONSENSE\r\n\r\n' | head -1 | tr -d '\r')"
check "400 no Host" "HTTP/1.1 400 Bad Request" "$(raw 'GET / HTTP/1.1\r\n\r\n' | head -1 | tr -d '\r')"
check "400 version" "HTTP/1.1 400 Bad Request" "$(raw 'GET / HTTP/9\r\n\r\n' | head -1 | tr -d '\r')"
check "505" "HTTP/1.1 505 HTTP Version Not Supported" \
    "$(raw 'GET / HTTP/2.0\r\nHost: x\r\n\r\n' | head -1 | tr -d '\r')"
check "HTTP/1.2 as 1.1" "hello, world" \
    "$(raw 'GET /hello.txt HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n' | tail -1)"
check "400 two Hosts" "HTTP/1.1 400 Bad Request" \
    "$(raw 'GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n' | head -1 | tr -d '\r')"
check "400 folded header" "HTTP/1.1 400 Bad Request" \
    "$(raw 'GET / HTTP/1.1\r\nHost: x\r\n X-Folded: y\r\n\r\n' | head -1 | tr -d '\r')"
check "400 blank before colon" "HTTP/1.1 400 Bad Request" \
    "$(raw 'GET / HTTP/1.1\r\nHost: x\r\nX-Blank : y\r\n\r\n' | head -1 | tr -d '\r')"
# answered at once, not when the head times out (raw gives up after 10 s)
check "HTTP/0.9 line: 400" "HTTP/1.1 400 Bad Request" "$(raw 'GET /hello.txt\r\n' | head -1 | tr -d '\r')"
check "bare LF line ends" "hello, world" \
    "$(raw 'GET /hello.txt HTTP/1.1\nHost: x\nConnection: close\n\n' | tail -1)"
check "absolute form" "hello, world" \
    "$(raw 'GET http://x/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | tail -1)"

# ---- no way out of ROOT
for p in /../secret.txt /../../etc/passwd /deep/../../secret.txt /%2e%2e/secret.txt \
    /%2E%2E%2Fsecret.txt /deep/er/..%2f..%2f..%2fsecret.txt /..%5c..%5csecret.txt; do
    got=$(code --path-as-is "$url$p")
    [ "$got" = 403 ] || [ "$got" = 404 ] || fail "traversal $p: got $got"
    c --path-as-is "$url$p" | grep -q secret && fail "traversal $p: leaked the secret"
    checks=$((checks + 1))
done
check "dotdot 403" 403 "$(code --path-as-is "$url/../secret.txt")"
check "symlink out (relative)" 403 "$(code "$url/out-rel")"
check "symlink out (absolute)" 403 "$(code "$url/out-abs")"
check "through a dir symlink out" 403 "$(code "$url/out-dir/secret.txt")"
same "symlink inside" "$root/hello.txt" "$url/in-link"
same "symlink up, still inside" "$root/hello.txt" "$url/deep/up-link"

# ---- connections: keep-alive, close, HTTP/1.0, pipelining
check "keep-alive: 3 requests, 1 connect" 1 "$(c -o /dev/null -o /dev/null -o /dev/null \
    -w '%{num_connects}\n' "$url/1k.bin" "$url/hello.txt" "$url/1k.bin" | awk '{n += $1} END {print n}')"
check "keep-alive after a 404" 1 "$(c -o /dev/null -o /dev/null -w '%{num_connects}\n' \
    "$url/missing" "$url/1k.bin" | awk '{n += $1} END {print n}')"
check "Connection: close" close "$(header Connection -H 'Connection: close' "$url/hello.txt")"
check "close: 2 connects" 2 "$(c -o /dev/null -o /dev/null -H 'Connection: close' \
    -w '%{num_connects}\n' "$url/1k.bin" "$url/1k.bin" | awk '{n += $1} END {print n}')"
check "HTTP/1.0 closes" close "$(header Connection -0 "$url/hello.txt")"
check "HTTP/1.0 keep-alive" 1 "$(c -0 -H 'Connection: keep-alive' -o /dev/null -o /dev/null \
    -w '%{num_connects}\n' "$url/1k.bin" "$url/1k.bin" | awk '{n += $1} END {print n}')"
raw 'GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nHEAD /1k.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /deep/er/file.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
    >"$work/pipelined"
check "pipelined: 3 answers" 3 "$(grep -c '^HTTP/1.1 200 OK' "$work/pipelined")"
check "pipelined: bodies in order" "hello, world|deep" \
    "$(tr -d '\r' <"$work/pipelined" | grep -E '^(hello, world|deep)$' | paste -sd'|')"
raw 'GET /hello.txt HTTP/1.0\r\n\r\n' >"$work/http10"
check "HTTP/1.0 answered and closed" "hello, world" "$(tail -1 "$work/http10")"

# ---- a client that stops reading in the middle of the 100 MB body, then goes: its connection
# and the file it was sent from are closed (the server's fds come back to their count)
fds() { ls "/proc/$server_pid/fd" 2>/dev/null | wc -l; }
fds_before=$(fds)
timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port
    printf 'GET /100m.bin HTTP/1.1\r\nHost: x\r\n\r\n' >&3; head -c 1000 <&3 >/dev/null; sleep 1"
for _ in $(seq 50); do [ "$(fds)" = "$fds_before" ] && break; sleep 0.1; done
check "fds after a reader left mid-body" "$fds_before" "$(fds)"

# ---- a client that stops reading and stays: once a send has made no progress for the send
# timeout, the server closes the connection and the file (its fds come back to their count)
# while the client still holds its end
timeout 40 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port
    printf 'GET /100m.bin HTTP/1.1\r\nHost: x\r\n\r\n' >&3; sleep 40" &
stalled=$!
for _ in $(seq 20); do [ "$(fds)" -gt "$fds_before" ] && break; sleep 0.1; done
check "fds while a client is stalled" 1 "$([ "$(fds)" -gt "$fds_before" ] && echo 1)"
for _ in $(seq 300); do [ "$(fds)" = "$fds_before" ] && break; sleep 0.1; done
check "fds after the send timeout, the client still there" "$fds_before" "$(fds)"
check "the stalled client still there" 1 "$(kill -0 "$stalled" 2>/dev/null && echo 1)"
kill "$stalled" 2>/dev/null
wait "$stalled" 2>/dev/null

# ---- 200 parallel fetches (the 1 MiB file and the small one), every body checked
seq 200 | timeout 120 xargs -P 50 -I{} sh -c "
    f=1m.bin; [ \$(({} % 2)) = 0 ] && f=1k.bin
    curl -sf --max-time 60 '$url/'\$f | cmp -s - '$root/'\$f || echo bad {}" >"$work/par"
check "200 parallel fetches" 0 "$(grep -c bad "$work/par")"
kill -0 "$pid" 2>/dev/null || fail "the server died"

# ---- a short wrk run: a rate, no socket errors, no non-2xx
if [ "$bench" = 1 ]; then
    if command -v wrk >/dev/null; then
        # a timeout longer than the run: a slow response on a loaded machine (a sanitizer build)
        # is not an error, a refused, reset or failed connection is
        timeout 30 wrk -t2 -c50 -d2s --timeout 20s "$url/1k.bin" >"$work/wrk" 2>&1 ||
            fail "wrk failed: $(cat "$work/wrk")"
        cat "$work/wrk"
        rate=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$work/wrk")
        awk -v r="${rate:-0}" 'BEGIN {exit !(r > 0)}' || fail "wrk: no rate"
        grep -q 'Socket errors' "$work/wrk" && fail "wrk: socket errors"
        grep -q 'Non-2xx' "$work/wrk" && fail "wrk: non-2xx answers"
        checks=$((checks + 3))
    else
        echo "wrk not found (apt-get install wrk): its part is skipped"
    fi
fi

# ---- a clean stop: SIGTERM to the server (not to a wrapper), which must exit 0 (wrapped: clean)
kill -TERM "$server_pid"
timeout 60 tail --pid="$pid" -f /dev/null || fail "the server did not stop on SIGTERM"
wait "$pid"
rc=$?
pid= server_pid=
check "exit status after SIGTERM" 0 "$rc"
grep -q 'SIGTERM, stopping' "$work/log" || fail "no stop message"
echo "ok: $checks checks"

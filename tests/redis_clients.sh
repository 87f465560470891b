#!/usr/bin/env bash
# Drives examples/redis with the real clients from Debian's redis-tools: redis-cli for every
# command and its error replies (wrong arity, wrong type, not an integer, unknown command,
# protocol errors), a 1 MB value, binary-safe values (`redis-cli -x`), pipelining
# (`redis-cli --pipe`), inline commands, expiry, connections that fail without disturbing the
# others, then a short redis-benchmark run (plain and -P 16) that must finish with nonzero rates.
#
#     tests/redis_clients.sh [--no-bench] PATH/TO/redis
#
# $REDIS_SERVER_WRAP, if set, is put in front of the server (CI: .ci/valgrind-check).
# Exits 77 (meson's "skipped") when redis-cli is not installed; 1 on the first failed check.
# Bounded: every client call has a time limit, the whole script a minute or two.
set -uo pipefail

bench=1
if [ "${1:-}" = "--no-bench" ]; then
    bench=0
    shift
fi
server=${1:?usage: redis_clients.sh [--no-bench] PATH/TO/redis}
if ! command -v redis-cli >/dev/null; then
    echo "SKIP: redis-cli not found (apt-get install redis-tools)"
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/redis_clients.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then
        # with $REDIS_SERVER_WRAP, $pid is the wrapper: stop the server under it too, or a
        # failed run leaves it running
        command -v pkill >/dev/null && pkill -TERM -P "$pid" 2>/dev/null
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
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

# Start on port 0 (a free port) and read the port from the server's first line.
${REDIS_SERVER_WRAP:-} "$server" 127.0.0.1 0 2>"$work/log" &
pid=$!
for _ in $(seq 600); do
    port=$(sed -n 's/^redis: listening on .* port \([0-9]*\) .*/\1/p' "$work/log")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "the server exited at start"
    sleep 0.1
done
[ -n "$port" ] || fail "the server did not start within 60 s"
echo "server on port $port"

cli() { timeout 20 redis-cli -p "$port" "$@"; }

# expect 'REPLY' ARGS...: the reply as redis-cli prints it (no tty: raw), trailing newlines cut.
checks=0
expect() {
    local want=$1 got
    shift
    got=$(cli "$@" 2>&1)
    [ "$got" = "$want" ] || fail "redis-cli $*: expected '$want', got '$got'"
    checks=$((checks + 1))
}

# ---- every command, with its errors (texts as Redis 7 gives them)
expect PONG ping
expect hello ping hello
expect "ERR wrong number of arguments for 'ping' command" ping a b
expect 'a b' echo 'a b'
expect "ERR wrong number of arguments for 'echo' command" echo
expect "ERR unknown command 'nosuch', with args beginning with: 'a' 'b' " nosuch a b
expect OK set k v
expect v get k
expect "ERR wrong number of arguments for 'get' command" get
expect "ERR wrong number of arguments for 'get' command" get a b
expect "ERR wrong number of arguments for 'set' command" set k
expect '' get missing
expect OK SeT MixedCase 1
expect 1 GET MixedCase
expect 2 exists k k missing
expect "ERR wrong number of arguments for 'exists' command" exists
expect 1 del k missing
expect 0 exists k
expect "ERR wrong number of arguments for 'del' command" del
# SET's options
expect '' set k v xx
expect OK set k v nx
expect '' set k w nx
expect v get k
expect OK set k w xx
expect "ERR syntax error" set k v nx xx
expect "ERR syntax error" set k v bogus
expect "ERR syntax error" set k v ex 10 px 100
expect "ERR syntax error" set k v ex
expect "ERR value is not an integer or out of range" set k v ex abc
expect "ERR invalid expire time in 'set' command" set k v ex 0
expect "ERR invalid expire time in 'set' command" set k v px -5
# the options are all read before the number, as Redis does; a repeated one counts once more
expect "ERR syntax error" set k v ex abc bogus
expect "ERR syntax error" set k v ex 0 bogus
expect OK set k v ex 10 ex 20
expect 20 ttl k
# INCR
expect 1 incr counter
expect 2 incr counter
expect 2 get counter
expect OK set k 41
expect 42 incr k
expect OK set k abc
expect "ERR value is not an integer or out of range" incr k
expect OK set k 007
expect "ERR value is not an integer or out of range" incr k
expect OK set k 9223372036854775807
expect "ERR increment or decrement would overflow" incr k
expect OK set neg -9223372036854775808
expect -9223372036854775807 incr neg
# wrong type: a list
expect 2 rpush list a b
expect 3 lpush list z
expect 3 llen list
expect list type list
expect string type k
expect none type missing
expect "WRONGTYPE Operation against a key holding the wrong kind of value" get list
expect "WRONGTYPE Operation against a key holding the wrong kind of value" incr list
expect "WRONGTYPE Operation against a key holding the wrong kind of value" lpush k x
expect "WRONGTYPE Operation against a key holding the wrong kind of value" llen k
# MSET, MGET
expect OK mset a 1 b 2 c 3
expect "$(printf '1\n2\n\n3')" mget a b list c
expect "ERR wrong number of arguments for 'mset' command" mset a
expect "ERR wrong number of arguments for 'mset' command" mset a 1 b
expect "ERR wrong number of arguments for 'mget' command" mget
expect OK mset list now-a-string
expect string type list
# EXPIRE, TTL, PTTL
expect -2 ttl missing
expect -1 ttl a
expect 0 expire missing 10
expect 1 expire a 100
expect 100 ttl a
expect 0 expire a 50 nx
expect 1 expire a 50 xx
expect 0 expire a 10 gt
expect 1 expire a 10 lt
expect 10 ttl a
expect 0 expire a 5 gt xx # both conditions, not the last one: 5 is not greater than 10
expect "ERR NX and XX, GT or LT options at the same time are not compatible" expire a 5 nx xx
expect "ERR GT and LT options at the same time are not compatible" expire a 5 gt lt
expect "ERR Unsupported option bogus" expire a soon bogus
expect 10 ttl a
expect OK set a 1 keepttl
expect 10 ttl a
expect OK set a 1
expect -1 ttl a
expect "ERR value is not an integer or out of range" expire a soon
expect "ERR Unsupported option bogus" expire a 10 bogus
expect "ERR invalid expire time in 'expire' command" expire a 9223372036854775807
expect "ERR wrong number of arguments for 'ttl' command" ttl
expect 1 expire a -1
expect 0 exists a
expect OK set short v px 100
sleep 0.3
expect '' get short # expired: lazily, on access
# keys with a TTL that nobody touches are swept within a few 100 ms ticks
expect OK flushall
# (2 s to live, so that a slow run, under valgrind, still counts them all first; then
# up to 10 s for the sweeper, not a fixed sleep)
for i in $(seq 50); do printf 'SET swept:%d v PX 2000\r\n' "$i"; done | cli >/dev/null
expect 50 dbsize
for _ in $(seq 100); do [ "$(cli dbsize)" = 0 ] && break; sleep 0.1; done
expect 0 dbsize
expect "ERR syntax error" flushall bogus
# CONFIG GET (what redis-benchmark asks) and COMMAND
expect "$(printf 'save\n')" config get save
expect "$(printf 'appendonly\nno')" config get appendonly
expect '' config get no-such-parameter
expect "ERR unknown subcommand 'bogus'. Try CONFIG HELP." config bogus
expect "ERR wrong number of arguments for 'config|get' command" config get
expect '' command

# ---- binary-safe values and a 1 MB value (redis-cli -x sends stdin as the last argument)
head -c 1000 /dev/urandom >"$work/bin"
printf 'a\0b\r\nc\n' >>"$work/bin"
expect OK -x set bin <"$work/bin"
cli --raw get bin | head -c "$(stat -c %s "$work/bin")" | cmp -s - "$work/bin" ||
    fail "binary value came back different"
head -c 1048576 /dev/urandom >"$work/big"
expect OK -x set big <"$work/big"
cli --raw get big >"$work/big.back"
[ "$(stat -c %s "$work/big.back")" = 1048577 ] || fail "1 MB value: wrong length back"
head -c 1048576 "$work/big.back" | cmp -s - "$work/big" || fail "1 MB value came back different"
checks=$((checks + 2))

# ---- pipelining: 10,000 commands in one stream, every reply counted
expect OK flushall
for i in $(seq 10000); do printf '*3\r\n$3\r\nSET\r\n$%d\r\np:%d\r\n$1\r\nv\r\n' $((${#i} + 2)) "$i"; done \
    >"$work/pipe"
cli --pipe <"$work/pipe" >"$work/pipe.out" 2>&1 || fail "redis-cli --pipe: $(cat "$work/pipe.out")"
grep -q 'errors: 0, replies: 10000' "$work/pipe.out" || fail "pipe: $(cat "$work/pipe.out")"
expect 10000 dbsize

# ---- inline commands, an empty request, and connections that fail alone (bash's /dev/tcp)
exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "connect"
printf 'PING\r\nset  inline\t value \r\n\r\n*0\r\nGET inline\r\n' >&3
for want in '+PONG' '+OK' '$5' 'value'; do
    IFS= read -r -t 10 line <&3 || fail "inline: no reply"
    [ "${line%$'\r'}" = "$want" ] || fail "inline: expected '$want', got '$line'"
done
exec 4<>"/dev/tcp/127.0.0.1/$port" || fail "connect"
printf '*1\r\n$x\r\n' >&4 # a protocol error: this connection is answered and closed...
IFS= read -r -t 10 line <&4
[ "${line%$'\r'}" = '-ERR Protocol error: invalid bulk length' ] || fail "protocol error: got '$line'"
IFS= read -r -t 10 line <&4 && fail "the connection stayed open after a protocol error"
exec 4<&-
printf 'PING\r\n' >&3 # ...and the other one is still served
IFS= read -r -t 10 line <&3 || fail "a failing connection took another one down"
[ "${line%$'\r'}" = '+PONG' ] || fail "after another client's error: got '$line'"
exec 3<&-
checks=$((checks + 3))
# a header line with no end: refused once it passes 64 KB, with Redis's words; a count of
# arguments past 1M (Redis waits for up to INT_MAX of them: see the top of redis.c)
for t in "\$:too big bulk count string" "*:too big mbulk count string" "*2147483647:invalid multibulk length"; do
    exec 4<>"/dev/tcp/127.0.0.1/$port" || fail "connect"
    case $t in
    "*2147483647:"*) printf '*2147483647\r\n' >&4 ;;
    "\$:"*) printf '*1\r\n$%s' "$(head -c 70000 /dev/zero | tr '\0' 1)" >&4 ;;
    *) printf '*%s' "$(head -c 70000 /dev/zero | tr '\0' 1)" >&4 ;;
    esac
    IFS= read -r -t 10 line <&4
    [ "${line%$'\r'}" = "-ERR Protocol error: ${t#*:}" ] || fail "header '${t%%:*}': got '$line'"
    exec 4<&-
    checks=$((checks + 1))
done
# a command that arrives one byte per write: each recv goes on from where the last one stopped
req=$'*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$10\r\nbyte\r\nbyte\r\n'
exec 4<>"/dev/tcp/127.0.0.1/$port" || fail "connect"
for ((i = 0; i < ${#req}; i++)); do
    printf '%s' "${req:i:1}" >&4
    sleep 0.01
done
IFS= read -r -t 10 line <&4
[ "${line%$'\r'}" = '+OK' ] || fail "a command sent byte by byte: got '$line'"
exec 4<&-
expect "$(printf 'byte\r\nbyte')" get slow
# a client that pipelines GETs of a 64 KB value and never reads: the server holds one batch of
# replies for it, not every reply to the input it has read (16 KB of GETs: 95 MB of replies)
mem_pid=$(pgrep -P "$pid" | head -1) # under $REDIS_SERVER_WRAP, the server is its child
mem_pid=${mem_pid:-$pid}
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$mem_pid/status" 2>/dev/null; }
if [ -n "$(rss)" ]; then
    head -c 65536 /dev/zero | tr '\0' v >"$work/64k"
    expect OK -x set big64 <"$work/64k"
    for _ in $(seq 20000); do printf 'GET big64\r\n'; done >"$work/gets"
    before=$(rss)
    timeout 10 bash -c "exec 5<>/dev/tcp/127.0.0.1/$port; cat '$work/gets' >&5; sleep 5" &
    hog=$!
    peak=$before
    for _ in $(seq 20); do
        sleep 0.1
        now=$(rss)
        [ "${now:-0}" -gt "$peak" ] && peak=$now
    done
    expect PONG ping # the others are served meanwhile
    kill "$hog" 2>/dev/null
    wait "$hog" 2>/dev/null
    [ $((peak - before)) -lt 65536 ] ||
        fail "a client that never reads made the server grow by $((peak - before)) kB"
    checks=$((checks + 1))
fi
echo "redis-cli: $checks checks passed"

# ---- a short benchmark: it must complete, with nonzero rates
if [ "$bench" = 1 ] && command -v redis-benchmark >/dev/null; then
    for pipeline in 1 16; do
        out=$(timeout 120 redis-benchmark -p "$port" -t set,get,incr -n 20000 -c 20 -P "$pipeline" \
            -r 1000 --csv 2>&1) || fail "redis-benchmark -P $pipeline: $out"
        for t in SET GET INCR; do
            rps=$(printf '%s\n' "$out" | sed -n "s/^\"$t\",\"\([0-9.]*\)\".*/\1/p")
            awk -v r="${rps:-0}" 'BEGIN { exit !(r > 0) }' || fail "redis-benchmark $t -P $pipeline: '$out'"
            echo "redis-benchmark -P $pipeline $t: $rps requests/s"
        done
    done
fi

# ---- SHUTDOWN stops the server, which must exit 0 (and, wrapped, clean)
cli shutdown >/dev/null 2>&1
status=0
for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "the server did not stop on SHUTDOWN"
wait "$pid" || status=$?
pid=
[ "$status" = 0 ] || fail "the server exited with status $status"
echo "PASS"

#!/usr/bin/env bash
# The interop scenario (interop/SCENARIO.md) with rabbitmq-c's command-line
# tools as packaged by Debian (amqp-tools 0.11): amqp-declare-queue,
# amqp-publish, amqp-consume, amqp-get, amqp-delete-queue.
#
# Each tool run is one connection with one channel, so what the tools cannot
# express is left out:
#   - declare exchanges, exchange-to-exchange binding, queue unbind, purge,
#     publisher confirms, mandatory return, tx, reject/nack: no tool sends
#     those methods;
#   - 500 channels: every tool uses channel 1 of its own connection;
#   - route headers: amqp-consume binds with an empty arguments table, so no
#     x-match binding can be made;
#   - properties and headers round trip: amqp-publish sets some properties, but
#     neither amqp-get nor amqp-consume shows the properties of a message;
#   - 404 on passive declare: amqp-declare-queue never declares passively.
# basic.get: amqp-get prints the body only, so the get-ok message-count is
# checked through the queue's contents (the remaining messages are drained and
# counted), not read from the get-ok frame.
# Bindings are made by amqp-consume (-e/-r) on the predeclared amq.direct,
# amq.fanout and amq.topic exchanges; it declares its queue auto-delete.
set -u

U="${WARREN_URL:?WARREN_URL is not set}"
: "${WARREN_TLS_PORT:?}" "${WARREN_CA:?}" "${WARREN_PORT:?}" "${WARREN_HOST:?}"
TLS_URL="amqps://guest:guest@localhost:$WARREN_TLS_PORT/%2f"
T=20 # seconds any single tool run may take

tmp="$(mktemp -d)"
bg_pids=()
stop_bg() {
  local p
  for p in "${bg_pids[@]}"; do
    kill -TERM "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  bg_pids=()
}
trap 'stop_bg; rm -rf "$tmp"' EXIT

# The consumers' command: append the message body to the file $1.
cat >"$tmp/sink.sh" <<'EOF'
#!/bin/sh
cat >>"$1"
EOF
# Append the body to $1, then block until someone writes to the FIFO $2 (so the
# message stays unacknowledged until then).
cat >"$tmp/hold.sh" <<'EOF'
#!/bin/sh
cat >>"$1"
read x <"$2"
EOF
chmod +x "$tmp/sink.sh" "$tmp/hold.sh"
: >"$tmp/bg.err"

passed=0
failed=0
why=""
fail() { why="$*"; return 1; }
check() {
  local name="$1"
  shift
  why=""
  if "$@" && [ -z "$why" ]; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    printf 'FAIL %s: %s\n' "$name" "$(printf '%s' "${why:-failed}" | tr '\r\n' '  ' | head -c 2000)"
    failed=$((failed + 1))
  fi
  stop_bg
}

# ---- tool wrappers (all with timeouts; stderr goes to $tmp/err) -------------

declare_q() { timeout $T amqp-declare-queue -u "$U" "$@" 2>"$tmp/err"; }
get_q() { timeout $T amqp-get -u "$U" -q "$1" 2>"$tmp/err"; }
delete_q() { timeout $T amqp-delete-queue -u "$U" "$@" 2>"$tmp/err"; }
# publish_lines EXCHANGE KEY LINE... : one connection, one message per line (body = line + "\n")
publish_lines() {
  local ex="$1" key="$2"
  shift 2
  printf '%s\n' "$@" | timeout $T amqp-publish -u "$U" -e "$ex" -r "$key" -l 2>"$tmp/err"
}
err() { tr '\n' ' ' <"$tmp/err"; }

# consume_bg OUTFILE amqp-consume-options... : a background consumer appending bodies to OUTFILE
consume_bg() {
  local out="$1"
  shift
  : >"$out"
  timeout 120 amqp-consume -u "$U" "$@" "$tmp/sink.sh" "$out" 2>>"$tmp/bg.err" &
  bg_pids+=($!)
}

# wait_probe EXCHANGE KEY FILE : publish "probe" until FILE (a consumer's output) has one
wait_probe() {
  local i
  for i in $(seq 50); do
    publish_lines "$1" "$2" probe || { fail "amqp-publish probe: $(err)"; return 1; }
    sleep 0.1
    grep -qx probe "$3" 2>/dev/null && return 0
  done
  fail "consumer for $3 never got a probe via $1/$2 within 5s: $(tr '\n' ' ' <"$tmp/bg.err" 2>/dev/null)"
}

# wait_lines FILE N : wait (up to 5 s) until FILE holds N non-probe lines
wait_lines() {
  local i
  for i in $(seq 100); do
    [ "$(grep -cvx probe "$1" 2>/dev/null)" -ge "$2" ] && return 0
    sleep 0.05
  done
  return 0
}

# bodies FILE : the non-probe lines, sorted, space-separated
bodies() { grep -vx probe "$1" | sort | tr '\n' ' ' | sed 's/ $//'; }

# get_status QUEUE : prints "message", "empty" or the error text of basic.get
get_status() {
  local rc
  get_q "$1" >/dev/null
  rc=$?
  case $rc in
    0) echo message ;;
    2) echo empty ;;
    *) err ;;
  esac
}

# wait_get_status QUEUE PATTERN : poll basic.get until its status matches PATTERN (5 s)
wait_get_status() {
  local i s
  for i in $(seq 50); do
    s="$(get_status "$1")"
    [[ "$s" == $2 ]] && return 0
    sleep 0.1
  done
  fail "basic.get on $1: '$s', want '$2'"
}

# round_trip : a fresh connection declares, publishes and gets a message
new_connection_works() {
  local q got
  q="$(declare_q -q "")" || { fail "new connection: queue.declare: $(err)"; return 1; }
  publish_lines "" "$q" after-error || { fail "new connection: publish: $(err)"; return 1; }
  got="$(get_q "$q")" || { fail "new connection: basic.get: $(err)"; return 1; }
  [ "$got" = after-error ] || fail "new connection: got '$got', want 'after-error'"
  delete_q -q "$q" >/dev/null
}

# ---- checks ----------------------------------------------------------------

connect_tcp() {
  local out got
  out="$(declare_q -q c.connect)" || { fail "amqp-declare-queue: $(err)"; return 1; }
  [ "$out" = c.connect ] || { fail "declare-ok names '$out', want c.connect"; return 1; }
  publish_lines "" c.connect "hello tcp" || { fail "amqp-publish: $(err)"; return 1; }
  got="$(get_q c.connect)" || { fail "amqp-get: $(err)"; return 1; }
  [ "$got" = "hello tcp" ] || fail "got '$got', want 'hello tcp'"
}

connect_tls() {
  local tls=(--ssl --cacert "$WARREN_CA" -u "$TLS_URL") out got
  out="$(timeout $T amqp-declare-queue "${tls[@]}" -q c.tls 2>"$tmp/err")" || { fail "amqp-declare-queue over TLS: $(err)"; return 1; }
  [ "$out" = c.tls ] || { fail "declare-ok names '$out', want c.tls"; return 1; }
  printf 'over tls\n' | timeout $T amqp-publish "${tls[@]}" -r c.tls -l 2>"$tmp/err" || { fail "amqp-publish over TLS: $(err)"; return 1; }
  got="$(timeout $T amqp-get "${tls[@]}" -q c.tls 2>"$tmp/err")" || { fail "amqp-get over TLS: $(err)"; return 1; }
  [ "$got" = "over tls" ] || { fail "got '$got' over TLS, want 'over tls'"; return 1; }
  # The server really is verified: a CA file without Warren's CA must fail.
  local other="/etc/ssl/certs/ca-certificates.crt"
  [ -f "$other" ] || other="$tmp/sink.sh"
  if timeout $T amqp-declare-queue --ssl --cacert "$other" -u "$TLS_URL" -q c.tls >/dev/null 2>&1; then
    fail "TLS connection succeeded with a CA file that does not hold WARREN_CA"
  fi
}

declare_queues() {
  local out
  # durable
  out="$(declare_q -d -q c.q.durable)" || { fail "durable declare: $(err)"; return 1; }
  [ "$out" = c.q.durable ] || { fail "durable declare-ok names '$out'"; return 1; }
  declare_q -d -q c.q.durable >/dev/null || { fail "durable redeclare: $(err)"; return 1; }
  if declare_q -q c.q.durable >/dev/null; then fail "c.q.durable redeclared non-durable without error: it is not durable"; return 1; fi
  grep -q "406" "$tmp/err" || { fail "non-durable redeclare of c.q.durable: $(err), want 406"; return 1; }
  # server-named
  out="$(declare_q -q "")" || { fail "server-named declare: $(err)"; return 1; }
  [[ "$out" == amq.gen-* ]] || { fail "server-named queue is '$out', want amq.gen-*"; return 1; }
  [ "$(get_status "$out")" = empty ] || { fail "server-named queue $out: basic.get: $(get_status "$out")"; return 1; }
  # auto-delete (amqp-consume declares auto-delete when it binds): exists while consumed, gone after
  consume_bg "$tmp/ad.out" -q c.q.autodelete -e amq.direct -r c.q.autodelete -A
  wait_get_status c.q.autodelete empty || return 1
  wait_probe amq.direct c.q.autodelete "$tmp/ad.out" || return 1
  stop_bg
  wait_get_status c.q.autodelete "*NOT_FOUND - no queue 'c.q.autodelete' in vhost '/'*" || { why="auto-delete queue not deleted after its consumer left: $why"; return 1; }
  # exclusive: locked for other connections while its owner lives, gone after
  consume_bg "$tmp/ex.out" -q c.q.exclusive -x -A
  wait_get_status c.q.exclusive "*405, message: RESOURCE_LOCKED*" || { why="exclusive queue: $why"; return 1; }
  stop_bg
  wait_get_status c.q.exclusive "*NOT_FOUND*" || { why="exclusive queue not deleted with its connection: $why"; return 1; }
}

route_direct() {
  consume_bg "$tmp/da.out" -q c.direct.a -e amq.direct -r c.ka -A
  consume_bg "$tmp/db.out" -q c.direct.b -e amq.direct -r c.kb -A
  wait_probe amq.direct c.ka "$tmp/da.out" || return 1
  wait_probe amq.direct c.kb "$tmp/db.out" || return 1
  publish_lines amq.direct c.ka to-a || { fail "publish: $(err)"; return 1; }
  publish_lines amq.direct c.kb to-b || { fail "publish: $(err)"; return 1; }
  publish_lines amq.direct c.kc to-nobody || { fail "publish: $(err)"; return 1; }
  wait_lines "$tmp/da.out" 1
  wait_lines "$tmp/db.out" 1
  sleep 0.3
  [ "$(bodies "$tmp/da.out")" = to-a ] || { fail "queue bound with c.ka got '$(bodies "$tmp/da.out")', want 'to-a'"; return 1; }
  [ "$(bodies "$tmp/db.out")" = to-b ] || fail "queue bound with c.kb got '$(bodies "$tmp/db.out")', want 'to-b'"
}

route_fanout() {
  local q
  for q in a b c; do consume_bg "$tmp/f$q.out" -q "c.fanout.$q" -e amq.fanout -r "ignored.$q" -A; done
  for q in a b c; do wait_probe amq.fanout whatever "$tmp/f$q.out" || return 1; done
  publish_lines amq.fanout any-key fan || { fail "publish: $(err)"; return 1; }
  for q in a b c; do wait_lines "$tmp/f$q.out" 1; done
  sleep 0.3
  for q in a b c; do
    [ "$(bodies "$tmp/f$q.out")" = fan ] || { fail "c.fanout.$q got '$(bodies "$tmp/f$q.out")', want 'fan'"; return 1; }
  done
}

route_topic() {
  local k
  consume_bg "$tmp/star.out" -q c.topic.star -e amq.topic -r 'a.*.c' -A
  consume_bg "$tmp/hash.out" -q c.topic.hash -e amq.topic -r 'a.#' -A
  wait_probe amq.topic a.probe.c "$tmp/star.out" || return 1
  wait_probe amq.topic a.probe "$tmp/hash.out" || return 1
  for k in a.b.c a.b.b.c a a.c x.b.c b.a.c; do
    publish_lines amq.topic "$k" "$k" || { fail "publish $k: $(err)"; return 1; }
  done
  wait_lines "$tmp/star.out" 1
  wait_lines "$tmp/hash.out" 4
  sleep 0.3
  [ "$(bodies "$tmp/star.out")" = "a.b.c" ] || { fail "a.*.c got '$(bodies "$tmp/star.out")', want 'a.b.c'"; return 1; }
  [ "$(bodies "$tmp/hash.out")" = "a a.b.b.c a.b.c a.c" ] || fail "a.# got '$(bodies "$tmp/hash.out")', want 'a a.b.b.c a.b.c a.c'"
}

# Prefetch through the server's view: a manual-ack consumer with prefetch 3
# blocks on its first message; of 10 messages exactly 7 must still be ready
# (basic.get drains and counts them). Then 2 more are published, one message
# is acknowledged, and exactly one of the 2 must have gone to the consumer.
prefetch() {
  local rc
  mkfifo "$tmp/fifo"
  prefetch_steps
  rc=$?
  # Stop the consumer, then unblock whatever hold.sh still waits on the FIFO
  # (opening it read-write never blocks).
  stop_bg
  exec 3<>"$tmp/fifo"
  echo go >&3
  sleep 0.1
  exec 3>&-
  return $rc
}

prefetch_steps() {
  local n fifo="$tmp/fifo" out="$tmp/pf.out"
  declare_q -q c.prefetch >/dev/null || { fail "declare: $(err)"; return 1; }
  publish_lines "" c.prefetch 1 2 3 4 5 6 7 8 9 10 || { fail "publish: $(err)"; return 1; }
  : >"$out"
  timeout 120 amqp-consume -u "$U" -q c.prefetch -p 3 "$tmp/hold.sh" "$out" "$fifo" 2>>"$tmp/bg.err" &
  bg_pids+=($!)
  wait_lines "$out" 1
  [ "$(bodies "$out")" = 1 ] || { fail "consumer did not get message 1: '$(bodies "$out")'"; return 1; }
  sleep 0.5
  n=0
  while get_q c.prefetch >/dev/null; do n=$((n + 1)); [ $n -gt 20 ] && break; done
  [ $n = 7 ] || { fail "$n messages left ready with prefetch 3 and nothing acked, want 7 (so $((10 - n)) went to the consumer)"; return 1; }
  publish_lines "" c.prefetch x1 x2 || { fail "publish: $(err)"; return 1; }
  sleep 0.3
  timeout 5 sh -c 'echo go >"$1"' sh "$fifo" || { fail "could not release the consumer"; return 1; }
  wait_lines "$out" 2
  sleep 0.8
  n=0
  while get_q c.prefetch >/dev/null; do n=$((n + 1)); [ $n -gt 20 ] && break; done
  [ $n = 1 ] || fail "after one ack $((2 - n)) more went to the consumer, want exactly 1"
}

basic_get() {
  local got n
  declare_q -q c.get >/dev/null || { fail "declare: $(err)"; return 1; }
  publish_lines "" c.get g1 g2 g3 || { fail "publish: $(err)"; return 1; }
  got="$(get_q c.get)" || { fail "amqp-get: $(err)"; return 1; }
  [ "$got" = g1 ] || { fail "get-ok body '$got', want 'g1'"; return 1; }
  # message-count is not shown by amqp-get: count what is left instead.
  got="$(get_q c.get)$(get_q c.get)"
  [ "$got" = g2g3 ] || { fail "the 2 remaining messages are '$got', want g2 g3"; return 1; }
  [ "$(get_status c.get)" = empty ] || fail "more than 2 messages were left after the first get"
}

basic_get_empty() {
  local got rc
  declare_q -q c.get.empty >/dev/null || { fail "declare: $(err)"; return 1; }
  got="$(get_q c.get.empty)"
  rc=$?
  [ $rc = 2 ] || fail "amqp-get on an empty queue: exit $rc, output '$got', $(err) (want exit 2: get-empty)"
}

delete_if_unused() {
  local out
  declare_q -q c.del.unused >/dev/null || { fail "declare: $(err)"; return 1; }
  consume_bg "$tmp/du.out" -q c.del.unused -A
  wait_probe "" c.del.unused "$tmp/du.out" || return 1
  if delete_q -q c.del.unused --if-unused >/dev/null; then fail "queue.delete if-unused succeeded on a queue with a consumer"; return 1; fi
  grep -q "server channel error 406, message: PRECONDITION_FAILED - queue 'c.del.unused' in vhost '/' in use" "$tmp/err" ||
    { fail "queue.delete if-unused: $(err), want 406 PRECONDITION_FAILED - queue 'c.del.unused' in vhost '/' in use"; return 1; }
  out="$(delete_q -q c.del.unused)" || { fail "plain queue.delete: $(err)"; return 1; }
  [ "$out" = 0 ] || { fail "delete-ok message-count '$out', want 0"; return 1; }
  [[ "$(get_status c.del.unused)" == *"404, message: NOT_FOUND"* ]] || fail "queue still there after delete: $(get_status c.del.unused)"
}

delete_if_empty() {
  local out
  declare_q -q c.del.empty >/dev/null || { fail "declare: $(err)"; return 1; }
  publish_lines "" c.del.empty keep || { fail "publish: $(err)"; return 1; }
  if delete_q -q c.del.empty --if-empty >/dev/null; then fail "queue.delete if-empty succeeded on a queue with a message"; return 1; fi
  grep -q "server channel error 406, message: PRECONDITION_FAILED - queue 'c.del.empty' in vhost '/' not empty" "$tmp/err" ||
    { fail "queue.delete if-empty: $(err), want 406 PRECONDITION_FAILED - queue 'c.del.empty' in vhost '/' not empty"; return 1; }
  out="$(delete_q -q c.del.empty)" || { fail "plain queue.delete: $(err)"; return 1; }
  [ "$out" = 1 ] || fail "delete-ok message-count '$out', want 1"
}

redeclare_406() {
  declare_q -q c.redeclare >/dev/null || { fail "declare: $(err)"; return 1; }
  if declare_q -d -q c.redeclare >/dev/null; then fail "durable redeclare of a non-durable queue succeeded"; return 1; fi
  grep -qF "queue.declare: server channel error 406, message: PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'c.redeclare' in vhost '/': received 'true' but current is 'false'" "$tmp/err" ||
    { fail "got: $(err)"; return 1; }
  new_connection_works
}

exclusive_405() {
  consume_bg "$tmp/x.out" -q c.excl.other -x -A
  # amqp-get does not create the queue, so it can wait for the owner safely.
  wait_get_status c.excl.other "*405*" || return 1
  if declare_q -q c.excl.other >/dev/null; then fail "queue.declare of another connection's exclusive queue succeeded"; return 1; fi
  grep -qF "queue.declare: server channel error 405, message: RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'c.excl.other' in vhost '/'" "$tmp/err" ||
    { fail "got: $(err)"; return 1; }
  new_connection_works
}

wrong_password_403() {
  local bad="amqp://guest:not-the-password@$WARREN_HOST:$WARREN_PORT/%2f"
  if timeout $T amqp-declare-queue -u "$bad" -q c.badpw >/dev/null 2>"$tmp/err"; then
    fail "connection with a wrong password succeeded"
    return 1
  fi
  # rabbitmq-c announces authentication_failure_close: expect connection.close 403.
  grep -q "server connection error 403, message: ACCESS_REFUSED" "$tmp/err" || { fail "got: $(err), want connection.close 403 ACCESS_REFUSED"; return 1; }
  new_connection_works
}

big_message() {
  local i
  {
    for i in $(seq 0 255); do printf "\\x$(printf %02x "$i")"; done
    head -c $((5 * 1024 * 1024 - 256)) /dev/urandom
  } >"$tmp/big.in"
  [ "$(stat -c %s "$tmp/big.in")" = 5242880 ] || { fail "could not make the 5 MiB body"; return 1; }
  declare_q -q c.big >/dev/null || { fail "declare: $(err)"; return 1; }
  timeout 60 amqp-publish -u "$U" -r c.big <"$tmp/big.in" 2>"$tmp/err" || { fail "amqp-publish: $(err)"; return 1; }
  timeout 60 amqp-get -u "$U" -q c.big >"$tmp/big.out" 2>"$tmp/err" || { fail "amqp-get: $(err)"; return 1; }
  cmp -s "$tmp/big.in" "$tmp/big.out" || fail "body differs: $(stat -c %s "$tmp/big.out") bytes back, $(cmp "$tmp/big.in" "$tmp/big.out" 2>&1 | head -1)"
}

# 4 consumers (4 connections, no-ack, no prefetch limit) on one queue. Probes
# are sent until every consumer has one; then any 40 consecutive messages must
# be spread 10 each.
round_robin() {
  local i n total msgs=()
  declare_q -q c.roundrobin >/dev/null || { fail "declare: $(err)"; return 1; }
  for i in 0 1 2 3; do consume_bg "$tmp/rr$i.out" -q c.roundrobin -A; done
  for n in $(seq 100); do
    publish_lines "" c.roundrobin probe || { fail "publish: $(err)"; return 1; }
    sleep 0.05
    total=0
    for i in 0 1 2 3; do grep -qx probe "$tmp/rr$i.out" && total=$((total + 1)); done
    [ $total = 4 ] && break
  done
  [ $total = 4 ] || { fail "only $total of 4 consumers got a probe: $(tr '\n' ' ' <"$tmp/bg.err")"; return 1; }
  sleep 0.2
  for i in $(seq 1 40); do msgs+=("m$i"); done
  publish_lines "" c.roundrobin "${msgs[@]}" || { fail "publish: $(err)"; return 1; }
  for n in $(seq 100); do
    total=0
    for i in 0 1 2 3; do total=$((total + $(grep -cvx probe "$tmp/rr$i.out"))); done
    [ $total -ge 40 ] && break
    sleep 0.05
  done
  sleep 0.2
  local counts=""
  total=0
  for i in 0 1 2 3; do
    n=$(grep -cvx probe "$tmp/rr$i.out")
    counts="$counts $n"
    total=$((total + n))
  done
  [ $total = 40 ] || { fail "$total of 40 delivered:$counts"; return 1; }
  [ "$counts" = " 10 10 10 10" ] || fail "per-consumer counts$counts, want 10 each"
}

check "connect tcp" connect_tcp
check "connect tls" connect_tls
check "declare queues" declare_queues
check "route direct" route_direct
check "route fanout" route_fanout
check "route topic" route_topic
check "prefetch honoured" prefetch
check "basic.get" basic_get
check "basic.get empty" basic_get_empty
check "delete if-unused" delete_if_unused
check "delete if-empty" delete_if_empty
check "406 on redeclare then new channel works" redeclare_406
check "405 on exclusive queue of another connection then new channel works" exclusive_405
check "403 on wrong password then new channel works" wrong_password_403
check "5 MiB message" big_message
check "round-robin consumers" round_robin

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

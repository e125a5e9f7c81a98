#!/usr/bin/env bash
# Runs warren-perf scenarios against Warren and RabbitMQ on this machine,
# alternating brokers (W R W R ...) for several rounds, and prints the median
# of each figure per broker and the ratio Warren/RabbitMQ.
#
#   bench/compare.sh                        # every scenario, 3 rounds, 10 s each
#   bench/compare.sh --rounds 5 throughput fanout
#   bench/compare.sh --seconds 3 --scale 0.1   # a quick look
#
# Installs Debian's rabbitmq-server if it is missing (as root, or with sudo).
# Results: bench/results/<time>/results.jsonl and summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 seconds=10 scale=1 scenarios=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    *) scenarios+=("$1"); shift ;;
  esac
done

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v rabbitmq-server >/dev/null && [ ! -x /usr/sbin/rabbitmq-server ]; then
  echo "compare.sh: installing Debian's rabbitmq-server" >&2
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  # The package may start a system instance; this script runs its own.
  sudo_ service rabbitmq-server stop >/dev/null 2>&1 || true
fi
export PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"

cargo build --release -q -p warren -p warren-perf
perf=target/release/warren-perf
[ ${#scenarios[@]} -gt 0 ] || mapfile -t scenarios < <("$perf" list | awk '{print $1}')

out="bench/results/$(date +%Y%m%d-%H%M%S)"
work=$(mktemp -d /tmp/warren-compare.XXXXXX)
mkdir -p "$out"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# Debian's /usr/sbin wrapper switches to the rabbitmq user, and with it back
# to a 1,024-descriptor limit (RabbitMQ then stops accepting at ~1,000
# connections). As root, run the server script itself, which keeps ours.
rabbit_server=rabbitmq-server rabbitmqctl=rabbitmqctl
if [ "$(id -u)" = 0 ] && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
  rabbit_server=/usr/lib/rabbitmq/bin/rabbitmq-server
  rabbitmqctl=/usr/lib/rabbitmq/bin/rabbitmqctl
else
  echo "compare.sh: not root: RabbitMQ keeps its packaged file-descriptor limit" >&2
fi

wport=5801 rport=5802 node="warren-compare-$$@localhost"
stop_brokers() {
  [ -n "${wpid:-}" ] && { kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null; } || true
  if [ -n "${rshell:-}" ]; then
    "$rabbitmqctl" -n "$node" stop >/dev/null 2>&1 || kill "$rshell" 2>/dev/null || true
    wait "$rshell" 2>/dev/null || true
  fi
  wpid= rshell= rpid=
}
cleanup() {
  stop_brokers
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "compare.sh: nothing listening on port $1" >&2; exit 1
}

# Fresh brokers with empty data directories.
start_brokers() {
  rm -rf "$work/warren" "$work/rabbit"
  mkdir -p "$work/rabbit/mnesia" "$work/rabbit/log"
  echo "[]." >"$work/rabbit/enabled_plugins"
  target/release/warren --listen "127.0.0.1:$wport" --data-dir "$work/warren" >>"$work/warren.log" 2>&1 &
  wpid=$!
  RABBITMQ_NODE_PORT=$rport RABBITMQ_NODENAME=$node RABBITMQ_DIST_PORT=$((rport + 20000)) \
    RABBITMQ_MNESIA_BASE="$work/rabbit/mnesia" RABBITMQ_LOG_BASE="$work/rabbit/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$work/rabbit/enabled_plugins" \
    ERL_CRASH_DUMP="$work/erl_crash.dump" "$rabbit_server" >>"$work/rabbit.out" 2>&1 &
  rshell=$!
  wait_port $wport
  wait_port $rport
  rpid=
  for p in $(pgrep -x beam.smp); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "RABBITMQ_NODENAME=$node" && rpid=$p
  done
  [ -n "$rpid" ] || { echo "compare.sh: cannot find RabbitMQ's beam.smp process" >&2; exit 1; }
  echo "compare.sh: Warren pid $wpid on :$wport; RabbitMQ (beam.smp pid $rpid, $(grep "open files" /proc/$rpid/limits | awk '{print $4}') files) on :$rport" >&2
}

start_brokers
rversion=$("$rabbitmqctl" -n "$node" version 2>/dev/null || echo "?")

for s in "${scenarios[@]}"; do
  for r in $(seq 1 "$rounds"); do
    # Memory per connection is RSS growth: it needs brokers whose freed
    # memory from earlier runs cannot be reused.
    if [ "$s" = connections ]; then stop_brokers; start_brokers; fi
    for b in warren rabbitmq; do
      if [ $b = warren ]; then port=$wport pid=$wpid; else port=$rport pid=$rpid; fi
      echo "compare.sh: $s, round $r, $b" >&2
      "$perf" scenario "$s" --url "amqp://guest:guest@127.0.0.1:$port/%2f" --pid "$pid" \
        --broker "$b" --seconds "$seconds" --scale "$scale" 2>"$work/progress.log" \
        | grep '^{' >>"$out/results.jsonl" \
        || { echo "compare.sh: $s on $b failed:" >&2; tail -3 "$work/progress.log" >&2; }
    done
  done
done

{
  echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "Warren $(git rev-parse --short HEAD), RabbitMQ $rversion; $rounds rounds, ${seconds}s per run, scale $scale"
  echo
  python3 bench/summarize.py "$out/results.jsonl"
} | tee "$out/summary.md"

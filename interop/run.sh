#!/usr/bin/env bash
# The interop suite: every stock client runs interop/SCENARIO.md against a
# Warren of its own (release build, fresh data directory, free ports, a TLS
# listener with a CA made here), and one table sums it up.
#
# Installs what is missing, idempotently: a Python venv, node_modules, and
# (as root) Debian's Java, Go, Ruby (Bunny), PHP (php-amqplib), Perl
# (AnyEvent::RabbitMQ) and C (rabbitmq-c) clients and amqp-tools. A client whose
# runtime is missing counts as failed, never as skipped.
#
# With every client, the features × clients matrix in docs/compatibility.md
# must match the results; `--update-docs` rewrites it.
#
# Usage: interop/run.sh [--update-docs] [CLIENT...]   (default: all)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log() { printf '%s\n' "$*" >&2; }

# ---- setup ----------------------------------------------------------------

setup_python() {
  local venv="$here/.venv" req="$here/python/requirements.txt"
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
    log "interop: making the Python venv"
    python3 -m venv "$venv" &&
      "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" &&
      cp "$req" "$venv/requirements.txt"
  fi
}

setup_node() {
  command -v npm >/dev/null || return 1
  if [ ! -d "$here/node/node_modules" ] || [ "$here/node/package-lock.json" -nt "$here/node/node_modules" ]; then
    log "interop: npm ci"
    (cd "$here/node" && npm ci --silent --no-audit --no-fund) && touch "$here/node/node_modules"
  fi
}

DEBIAN_PACKAGES=(librabbitmq-client-java golang-go golang-github-rabbitmq-amqp091-go-dev amqp-tools
  ruby-bunny php-cli php-amqplib libanyevent-rabbitmq-perl libnet-ssleay-perl librabbitmq-dev gcc libc6-dev)

setup_debian() {
  local missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "interop: missing Debian packages ${missing[*]} and not root"
    return 1
  fi
  log "interop: apt-get install ${missing[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_java() {
  # Debian's librabbitmq-client-java installs amqp-client.jar; it logs through slf4j.
  local cp="/usr/share/java/amqp-client.jar:/usr/share/java/slf4j-api.jar"
  [ -f /usr/share/java/slf4j-nop.jar ] && cp="$cp:/usr/share/java/slf4j-nop.jar"
  mkdir -p "$work/java" && javac -d "$work/java" -cp "$cp" "$here/java/Scenario.java" || return 1
  echo "$cp:$work/java" >"$work/java.classpath"
}

setup_go() {
  mkdir -p "$work/go" &&
    GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS=-mod=mod GOCACHE="$work/gocache" GOPROXY=off \
      go build -o "$work/go/scenario" "$here/go/scenario.go"
}

setup_c() {
  mkdir -p "$work/c" && gcc -O1 -Wall -o "$work/c/scenario" "$here/c/scenario.c" -lrabbitmq
}

# ---- one Warren per client -------------------------------------------------

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_client() {
  local name="$1"; shift
  local dir="$work/$name" tcp tls
  mkdir -p "$dir/data"
  tcp=$(free_port); tls=$(free_port)
  cat >"$dir/warren.toml" <<TOML
data_dir = "$dir/data"
[listeners]
tcp = ["127.0.0.1:$tcp"]
tls = ["127.0.0.1:$tls"]
[tls]
cert = "$work/certs/server.pem"
key = "$work/certs/server.key"
TOML
  "$warren_bin" --config "$dir/warren.toml" 2>"$dir/warren.log" &
  local pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$tcp") 2>/dev/null && break
    sleep 0.05
  done
  WARREN_HOST=127.0.0.1 WARREN_PORT=$tcp WARREN_TLS_PORT=$tls WARREN_CA="$work/certs/ca.pem" \
    WARREN_URL="amqp://guest:guest@127.0.0.1:$tcp/%2f" \
    timeout 600 "$@" >"$dir/out.log" 2>&1
  local code=$?
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  local summary passed=0 failed=0
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$dir/out.log" | tail -n 1)
  if [ -n "$summary" ]; then
    passed=${summary%% passed*}
    failed=${summary#*, }; failed=${failed%% failed}
  fi
  if [ -z "$summary" ] || [ "$code" != 0 ] && [ "$failed" = 0 ]; then
    failed=$((failed + 1))  # crashed, timed out, or ended without a summary
  fi
  RESULTS+=("$name|$passed|$failed")
  if [ "$failed" != 0 ]; then
    log "---- $name (exit $code) ----"
    sed 's/^/  /' "$dir/out.log" >&2
    log "  -- warren log tail --"
    tail -n 20 "$dir/warren.log" | sed 's/^/  /' >&2
  fi
}

missing_runtime() {
  RESULTS+=("$1|0|1")
  log "---- $1: runtime missing ($2) ----"
}

# ---- main -------------------------------------------------------------------

RESULTS=()
update_docs=0
if [ "${1:-}" = "--update-docs" ]; then update_docs=1; shift; fi
wanted=("$@")
want() { [ ${#wanted[@]} -eq 0 ] && return 0; local w; for w in "${wanted[@]}"; do [[ "$1" == $w* ]] && return 0; done; return 1; }

# WARREN_BIN: use this binary instead of building one (for work on the clients).
warren_bin="${WARREN_BIN:-$root/target/release/warren}"
if [ -z "${WARREN_BIN:-}" ]; then
  log "interop: building warren (release)"
  (cd "$root" && cargo build --release --locked -p warren -q) || { log "build failed"; exit 1; }
fi

python_ok=1; setup_python || python_ok=0
py="$here/.venv/bin/python"
[ $python_ok = 1 ] || { log "interop: the Python venv could not be made"; exit 1; }
mkdir -p "$work/certs" && "$py" "$here/certs.py" "$work/certs" || { log "certs failed"; exit 1; }

node_ok=1; setup_node || node_ok=0
debian_ok=1; setup_debian || debian_ok=0

for client in pika_blocking pika_asyncio aio_pika celery kombu; do
  want "python-$client" || continue
  if [ $python_ok = 1 ]; then run_client "python-$client" "$py" "$here/python/$client.py"
  else missing_runtime "python-$client" "venv"; fi
done
for client in amqplib_callback amqplib_promise amqp_client; do
  want "node-$client" || continue
  if [ $node_ok = 1 ]; then run_client "node-$client" node "$here/node/$client.js"
  else missing_runtime "node-$client" "node_modules"; fi
done
if want java; then
  if [ $debian_ok = 1 ] && setup_java; then run_client java java -cp "$(cat "$work/java.classpath")" Scenario
  else missing_runtime java "librabbitmq-client-java / javac"; fi
fi
if want go; then
  if [ $debian_ok = 1 ] && setup_go; then run_client go "$work/go/scenario"
  else missing_runtime go "golang-go / amqp091-go"; fi
fi
if want c-amqp-tools; then
  if [ $debian_ok = 1 ]; then run_client c-amqp-tools bash "$here/c/scenario.sh"
  else missing_runtime c-amqp-tools "amqp-tools"; fi
fi
if want c-rabbitmq-c; then
  if [ $debian_ok = 1 ] && setup_c; then run_client c-rabbitmq-c "$work/c/scenario"
  else missing_runtime c-rabbitmq-c "librabbitmq-dev / gcc"; fi
fi
if want ruby-bunny; then
  if [ $debian_ok = 1 ]; then run_client ruby-bunny ruby "$here/ruby/scenario.rb"
  else missing_runtime ruby-bunny "ruby-bunny"; fi
fi
if want php-amqplib; then
  if [ $debian_ok = 1 ]; then run_client php-amqplib php "$here/php/scenario.php"
  else missing_runtime php-amqplib "php-amqplib"; fi
fi
if want perl-anyevent; then
  if [ $debian_ok = 1 ]; then run_client perl-anyevent perl "$here/perl/scenario.pl"
  else missing_runtime perl-anyevent "libanyevent-rabbitmq-perl"; fi
fi
if want rust-lapin; then
  (cd "$root" && cargo build --release --locked -q -p warren-interop) &&
    run_client rust-lapin "$root/target/release/lapin_scenario" ||
    missing_runtime rust-lapin "cargo build"
fi

printf '\n%-26s %7s %7s\n' client passed failed
status=0
for row in "${RESULTS[@]}"; do
  IFS='|' read -r name passed failed <<<"$row"
  printf '%-26s %7s %7s\n' "$name" "$passed" "$failed"
  [ "$failed" != 0 ] && status=1
done
[ ${#RESULTS[@]} -eq 0 ] && status=1

# The matrix in docs/compatibility.md, from every client's output.
if [ ${#wanted[@]} -eq 0 ]; then
  clients=()
  for row in "${RESULTS[@]}"; do clients+=("${row%%|*}"); done
  if [ $update_docs = 1 ]; then
    "$py" "$here/matrix.py" --update "$root/docs/compatibility.md" "$work" "${clients[@]}" || status=1
  elif ! "$py" "$here/matrix.py" --check "$root/docs/compatibility.md" "$work" "${clients[@]}"; then
    log "docs/compatibility.md: the matrix differs from these results; run interop/run.sh --update-docs"
    status=1
  fi
fi
exit $status

#!/usr/bin/env bash
# Benchmark-style (not in CI): the HTTP cache-tests suite (the same pinned
# version as scripts/cache-conformance.sh) against pollhttp's cache and
# against squid, varnish and trafficserver (Debian packages), each a reverse
# proxy on 127.0.0.1 to the suite's origin, one after another on the same
# machine; prints a Markdown table, ours vs theirs (the one in
# benches/README.md). Run as root (the daemons drop to their own users) after
# scripts/cache-conformance.sh has installed the suite:
#
#   apt-get install -y --no-install-recommends squid varnish trafficserver
#   benches/cache-conformance-compare.sh [ours squid varnish trafficserver]
#
# A cache whose daemon is missing is left out of the table. The configurations
# follow the suite's own docker/ directory (squid: accel mode, origin as a
# parent; varnish: builtin VCL, default_ttl=0 default_grace=0; trafficserver:
# one remap rule, its docker records with the ports and paths made ours).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.4.5
TARGET="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
OUT="$TARGET/cache-conformance/compare"
export CACHE_TESTS_DIR="$TARGET/cache-tests-$VERSION/node_modules/http-cache-tests"
if [ ! -f "$CACHE_TESTS_DIR/package.json" ]; then
  echo "run scripts/cache-conformance.sh first (it installs the suite)" >&2
  exit 1
fi
CACHES=("$@")
[ ${#CACHES[@]} -gt 0 ] || CACHES=(ours squid varnish trafficserver)
rm -rf "$OUT"
mkdir -p "$OUT"
chmod 777 "$OUT"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_for() {
  for _ in $(seq 150); do
    if grep -Eo "$2" "$1" 2>/dev/null | head -1 | grep .; then return 0; fi
    sleep 0.1
  done
  echo "no '$2' in $1 after 15 s" >&2
  return 1
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (up to 30 s).
wait_port() {
  for _ in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1 after 30 s" >&2
  return 1
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

node --no-warnings scripts/cache-conformance.mjs origin 0 >"$OUT/origin.log" 2>&1 &
pids+=($!)
ORIGIN="$(wait_for "$OUT/origin.log" '127\.0\.0\.1:[0-9]+' | cut -d: -f2)"

start_ours() {
  cargo build --quiet --locked -p pollhttp-tests --bin cache_proxy
  "$TARGET/debug/cache_proxy" --origin "http://127.0.0.1:$ORIGIN" >"$1/proxy.log" 2>"$1/proxy.err" &
  pids+=($!)
  wait_for "$1/proxy.log" '127\.0\.0\.1:[0-9]+' | cut -d: -f2
}

start_squid() {
  local dir=$1 port
  port=$(free_port)
  cat >"$dir/squid.conf" <<EOF
http_port 127.0.0.1:$port accel defaultsite=127.0.0.1:$ORIGIN no-vhost
cache_peer 127.0.0.1 parent $ORIGIN 0 no-query no-digest originserver name=origin
cache_peer_access origin allow all
http_access allow all
cache_mem 64 MB
icp_port 0
htcp_port 0
snmp_port 0
pid_filename $dir/squid.pid
cache_log $dir/cache.log
access_log none
cache_store_log none
netdb_filename none
coredump_dir $dir
shutdown_lifetime 1 second
connect_retries 3
EOF
  squid -N -f "$dir/squid.conf" >"$dir/out.log" 2>&1 &
  pids+=($!)
  wait_port "$port" >&2
  echo "$port"
}

start_varnish() {
  local dir=$1 port
  port=$(free_port)
  varnishd -F -n "$dir/work" -a "127.0.0.1:$port" -b "127.0.0.1:$ORIGIN" -T none \
    -p default_ttl=0 -p default_grace=0 -p default_keep=3600 -s malloc,64M \
    >"$dir/out.log" 2>&1 &
  pids+=($!)
  wait_port "$port" >&2
  echo "$port"
}

start_trafficserver() {
  local dir=$1 port pkg="$CACHE_TESTS_DIR/docker/trafficserver"
  port=$(free_port)
  mkdir -p "$dir/etc" "$dir/run" "$dir/log" "$dir/cache"
  cp -r /etc/trafficserver/. "$dir/etc/"
  sed -e "s/^CONFIG proxy.config.http.server_ports .*/CONFIG proxy.config.http.server_ports STRING $port:ip-in=127.0.0.1/" \
    -e "s/^CONFIG proxy.config.admin.user_id .*/CONFIG proxy.config.admin.user_id STRING #-1/" \
    "$pkg/records.config" >"$dir/etc/records.config"
  cat >>"$dir/etc/records.config" <<EOF
CONFIG proxy.config.local_state_dir STRING $dir/run
CONFIG proxy.config.log.logfile_dir STRING $dir/log
CONFIG proxy.config.admin.synthetic_port INT 0
CONFIG proxy.config.process_manager.mgmt_port INT 0
EOF
  echo "map http://127.0.0.1:$port/ http://127.0.0.1:$ORIGIN/" >"$dir/etc/remap.config"
  echo "$dir/cache 64M" >"$dir/etc/storage.config"
  PROXY_CONFIG_CONFIG_DIR="$dir/etc" traffic_server >"$dir/out.log" 2>&1 &
  pids+=($!)
  wait_port "$port" >&2
  echo "$port"
}

have() {
  case "$1" in
    ours) command -v cargo ;;
    squid) command -v squid || test -x /usr/sbin/squid ;;
    varnish) command -v varnishd || test -x /usr/sbin/varnishd ;;
    trafficserver) command -v traffic_server ;;
  esac >/dev/null
}

export PATH="$PATH:/usr/sbin"
table_args=()
for c in "${CACHES[@]}"; do
  if ! have "$c"; then
    echo "== $c: not installed, left out"
    continue
  fi
  dir="$OUT/$c"
  mkdir -p "$dir"
  chmod 777 "$dir"
  echo "== $c"
  n=${#pids[@]}
  # Not in a command substitution: its subshell would keep the servers'
  # pids from `pids` (and so from the cleanup).
  "start_$c" "$dir" >"$dir/port"
  port="$(cat "$dir/port")"
  timeout 240 node --no-warnings scripts/cache-conformance.mjs run \
    "http://127.0.0.1:$port" "$dir/results.json" | sed -n '1,12p'
  for p in "${pids[@]:$n}"; do kill "$p" 2>/dev/null || true; done
  table_args+=("$c=$dir/results.json")
done

echo
echo "cache-tests $VERSION, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -sr)"
echo
node --no-warnings scripts/cache-conformance.mjs table "${table_args[@]}" | tee "$OUT/table.md"

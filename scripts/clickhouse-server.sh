#!/usr/bin/env bash
# Runs Debian's clickhouse-server (18.16, `apt-get install -y clickhouse-server clickhouse-client`)
# for local development, without root, systemd or Docker: its own directory, 127.0.0.1 only,
# default user without password, timezone UTC.
#
#   scripts/clickhouse-server.sh start    # prints the URL for QOE_CLICKHOUSE_URL
#   scripts/clickhouse-server.sh status
#   scripts/clickhouse-server.sh stop
#
# Environment: QOE_CH_DIR (default ./.cache/clickhouse-server), QOE_CH_HTTP_PORT (8123),
# QOE_CH_TCP_PORT (9000), QOE_CH_INTERSERVER_PORT (9009), QOE_CLICKHOUSE_SERVER_BIN.
set -euo pipefail

DIR="$(mkdir -p "${QOE_CH_DIR:-./.cache/clickhouse-server}" && cd "${QOE_CH_DIR:-./.cache/clickhouse-server}" && pwd)"
HTTP_PORT="${QOE_CH_HTTP_PORT:-8123}"
TCP_PORT="${QOE_CH_TCP_PORT:-9000}"
INTERSERVER_PORT="${QOE_CH_INTERSERVER_PORT:-9009}"
PIDFILE="$DIR/server.pid"
URL="http://127.0.0.1:$HTTP_PORT"

find_bin() {
  if [[ -n "${QOE_CLICKHOUSE_SERVER_BIN:-}" ]]; then echo "$QOE_CLICKHOUSE_SERVER_BIN"; return; fi
  for b in /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
    if [[ -x "$b" ]]; then echo "$b"; return; fi
  done
  command -v clickhouse-server || true
}

running() {
  [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

ping_ok() {
  [[ "$(curl -fsS --max-time 1 "$URL/ping" 2>/dev/null || true)" == Ok.* ]]
}

write_config() {
  mkdir -p "$DIR/data"
  cat > "$DIR/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>$DIR/server.log</log>
    <errorlog>$DIR/server.err.log</errorlog>
    <size>10M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$HTTP_PORT</http_port>
  <tcp_port>$TCP_PORT</tcp_port>
  <interserver_http_port>$INTERSERVER_PORT</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>$DIR/data/</path>
  <tmp_path>$DIR/data/tmp/</tmp_path>
  <user_files_path>$DIR/data/user_files/</user_files_path>
  <format_schema_path>$DIR/data/format_schemas/</format_schema_path>
  <users_config>$DIR/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
</yandex>
EOF
  cat > "$DIR/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
EOF
}

start() {
  if running; then echo "$URL"; return; fi
  local bin
  bin="$(find_bin)"
  if [[ -z "$bin" || ! -x "$bin" ]]; then
    echo "clickhouse-server not found: apt-get install -y clickhouse-server clickhouse-client" >&2
    exit 1
  fi
  write_config
  nohup "$bin" --config-file="$DIR/config.xml" > "$DIR/stdout.log" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 300); do
    if ping_ok; then echo "$URL"; return; fi
    if ! running; then
      echo "clickhouse-server exited; see $DIR/server.err.log and $DIR/stdout.log" >&2
      tail -n 20 "$DIR/server.err.log" >&2 2>/dev/null || true
      rm -f "$PIDFILE"
      exit 1
    fi
    sleep 0.1
  done
  echo "clickhouse-server did not answer $URL/ping within 30 s" >&2
  exit 1
}

stop() {
  if ! running; then rm -f "$PIDFILE"; echo "stopped"; return; fi
  local pid
  pid="$(cat "$PIDFILE")"
  kill "$pid"
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then rm -f "$PIDFILE"; echo "stopped"; return; fi
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  echo "stopped (killed)"
}

status() {
  if running && ping_ok; then
    echo "running $URL (pid $(cat "$PIDFILE"), $(curl -fsS --data-binary 'SELECT version()' "$URL/"))"
  elif running; then
    echo "starting or unresponsive (pid $(cat "$PIDFILE"))"
    exit 1
  else
    echo "stopped"
    exit 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

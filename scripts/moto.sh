#!/usr/bin/env bash
# A throwaway moto server (the AWS API, for tests) on 127.0.0.1 with a random port.
#   eval "$(scripts/moto.sh start)"   exports PUSHGATE_TEST_MOTO_URL and MOTO_PID
#   scripts/moto.sh stop "$MOTO_PID"
# moto is installed into .venv-moto on first use (pip, scripts/moto-requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-moto

case "${1:-start}" in
  start)
    if [ ! -x "$venv/bin/moto_server" ]; then
      echo "scripts/moto.sh: installing moto into $venv" >&2
      rm -rf "$venv"
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/moto-requirements.txt >&2
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log=$(mktemp -t pushgate-moto.XXXXXX)
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
        echo "export PUSHGATE_TEST_MOTO_URL=http://127.0.0.1:$port MOTO_PID=$pid"
        exit 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    echo "scripts/moto.sh: moto did not start:" >&2
    cat "$log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
    ;;
  stop)
    pid=${2:?usage: scripts/moto.sh stop MOTO_PID}
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    ;;
  *) echo "usage: $0 start | stop MOTO_PID" >&2; exit 2 ;;
esac

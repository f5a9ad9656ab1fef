# Source this file, then call start_emulator: it starts moto server from .venv on a free loopback port, waits
# until it answers, exports LIFEBOAT_TEST_ENDPOINT and AWS_ENDPOINT_URL, and stops the server when the calling
# script exits. The server's log goes to .lifeboat/moto.log.

start_emulator() {
  local root port tries
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  mkdir -p "$root/.lifeboat"
  port=$("$root/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # The manual snapshot quota is 100 per region in AWS by default; moto's default is 1000.
  MOTO_RDS_SNAPSHOT_LIMIT=100 "$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" \
    >"$root/.lifeboat/moto.log" 2>&1 &
  EMULATOR_PID=$!
  trap stop_emulator EXIT
  for tries in $(seq 1 100); do
    if "$root/.venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/data.json', timeout=1)" 2>/dev/null; then
      export LIFEBOAT_TEST_ENDPOINT="http://127.0.0.1:$port"
      export AWS_ENDPOINT_URL="$LIFEBOAT_TEST_ENDPOINT"
      echo "emulator: moto server on $LIFEBOAT_TEST_ENDPOINT (pid $EMULATOR_PID)"
      return 0
    fi
    kill -0 "$EMULATOR_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "emulator: moto server did not start; its log:" >&2
  cat "$root/.lifeboat/moto.log" >&2
  return 1
}

stop_emulator() {
  if [ -n "${EMULATOR_PID:-}" ] && kill -0 "$EMULATOR_PID" 2>/dev/null; then
    kill "$EMULATOR_PID" 2>/dev/null || true
    wait "$EMULATOR_PID" 2>/dev/null || true
  fi
}

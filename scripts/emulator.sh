# Source this file, then call start_emulator [quota]: it starts moto server from .venv (through scripts/emulator.py,
# which adds a test-only request to set a snapshot's status, as RDS fails a copy, RDS's snapshot quotas, and
# CloudWatch's alarm operations in the Rust SDK's protocol, RPC v2 CBOR) on a free loopback port, waits
# until it answers, exports LIFEBOAT_TEST_ENDPOINT and AWS_ENDPOINT_URL, and stops the server when the calling
# script exits. The server's log goes to .lifeboat/moto.log. start_raised_quota_emulator starts a second server whose
# accounts have the manual snapshot quota raised to 1000 (LIFEBOAT_TEST_ENDPOINT_RAISED_QUOTA), for tests of fleets
# that need more than AWS's default 100 snapshots per region.

EMULATOR_PIDS=()

# Start moto server (scripts/emulator.py) on a free loopback port with the manual snapshot quota $1; prints its endpoint.
launch_moto() {
  local quota=$1 log=$2 root port
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  mkdir -p "$root/.lifeboat"
  port=$("$root/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  MOTO_RDS_SNAPSHOT_LIMIT=$quota "$root/.venv/bin/python" "$root/scripts/emulator.py" -H 127.0.0.1 -p "$port" >"$root/.lifeboat/$log" 2>&1 &
  EMULATOR_PIDS+=("$!")
  trap stop_emulator EXIT
  for _ in $(seq 1 100); do
    if "$root/.venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/data.json', timeout=1)" 2>/dev/null; then
      LAUNCHED_ENDPOINT="http://127.0.0.1:$port"
      return 0
    fi
    kill -0 "${EMULATOR_PIDS[-1]}" 2>/dev/null || break
    sleep 0.2
  done
  echo "emulator: moto server did not start; its log:" >&2
  cat "$root/.lifeboat/$log" >&2
  return 1
}

start_emulator() {
  # The manual snapshot quota is 100 per region in AWS by default (moto's default is 1000); $1 sets another.
  launch_moto "${1:-100}" moto.log || return 1
  export LIFEBOAT_TEST_ENDPOINT="$LAUNCHED_ENDPOINT"
  export AWS_ENDPOINT_URL="$LIFEBOAT_TEST_ENDPOINT"
  echo "emulator: moto server on $LIFEBOAT_TEST_ENDPOINT"
}

start_raised_quota_emulator() {
  launch_moto 1000 moto-raised-quota.log || return 1
  export LIFEBOAT_TEST_ENDPOINT_RAISED_QUOTA="$LAUNCHED_ENDPOINT"
  echo "emulator: moto server with a raised snapshot quota on $LIFEBOAT_TEST_ENDPOINT_RAISED_QUOTA"
}

stop_emulator() {
  local pid
  for pid in "${EMULATOR_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
}

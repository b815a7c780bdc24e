#!/usr/bin/env bash
# Generates Python stubs from proto/ with grpcio-tools, starts a fresh
# `gardien serve`, and runs the seed's path (seed_path.py) against it.
set -euo pipefail
cd "$(dirname "$0")/../.."

python3 -c "import grpc, grpc_tools" 2>/dev/null || python3 -m pip install --quiet grpcio grpcio-tools
cargo build --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/gardien"
work=$(mktemp -d)
port=${PY_PORT:-50152}
export GARDIEN_DATA_DIR="$work/data" GARDIEN_LISTEN_ADDR="127.0.0.1:$port" GARDIEN_MAIL__POLL_INTERVAL_MS=50
unset GARDIEN_TEST_POSTGRES_URL GARDIEN_TEST_REDIS_URL

mkdir -p "$work/stubs"
python3 -m grpc_tools.protoc -Iproto --python_out="$work/stubs" --grpc_python_out="$work/stubs" \
  $(cd proto && find gardien -name '*.proto')

"$bin" serve >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do "$bin" health-check >/dev/null 2>&1 && break; sleep 0.1; done

service=$("$bin" credential create --role service --name py-onboarding 2>/dev/null)
security=$("$bin" credential create --role security --name py-secops 2>/dev/null)
PYTHONPATH="$work/stubs" python3 clients/python/seed_path.py --addr "127.0.0.1:$port" \
  --service-token "$service" --security-token "$security" --mail-dir "$work/data/mail" \
  || { echo "--- server log"; tail -50 "$work/server.log"; exit 1; }

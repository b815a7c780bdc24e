#!/usr/bin/env bash
# The passkey demo in headless Chromium: serves clients/web on
# http://localhost:$WEB_PORT (8080 by default), starts a fresh `gardien serve`
# whose relying party and gRPC-Web CORS allow that origin, creates an
# account, and lets browser_test.py drive the page with a virtual
# authenticator.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v chromium >/dev/null && command -v chromedriver >/dev/null || {
  echo "chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)"; exit 1; }
cargo build --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/gardien"
work=$(mktemp -d)
port=${WEB_GRPC_PORT:-50153}
web_port=${WEB_PORT:-8080}
origin="http://localhost:$web_port"
export GARDIEN_DATA_DIR="$work/data" GARDIEN_LISTEN_ADDR="127.0.0.1:$port"
export GARDIEN_CORS_ALLOWED_ORIGINS="[\"$origin\"]" GARDIEN_PASSKEYS__ORIGINS="[\"$origin\"]"
unset GARDIEN_TEST_POSTGRES_URL GARDIEN_TEST_REDIS_URL

"$bin" serve >"$work/server.log" 2>&1 &
server=$!
python3 -m http.server "$web_port" --bind 127.0.0.1 --directory clients/web >"$work/http.log" 2>&1 &
web=$!
trap 'kill $server $web 2>/dev/null || true; wait $server $web 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do "$bin" health-check >/dev/null 2>&1 && break; sleep 0.1; done

service=$("$bin" credential create --role service --name web-demo 2>/dev/null)
login="web.demo.$RANDOM"
password="correct horse battery staple $RANDOM"
grpcurl -plaintext -H "authorization: Bearer $service" \
  -d "{\"login\":\"$login\",\"email\":\"$login@example.com\",\"password\":\"$password\"}" \
  "127.0.0.1:$port" gardien.accountsecurity.v1.AccountSecurityService/CreateAccount >/dev/null

python3 clients/web/browser_test.py --page "$origin/passkey-demo.html" \
  --server "http://127.0.0.1:$port" --login "$login" --password "$password" \
  || { echo "--- server log"; tail -40 "$work/server.log"; exit 1; }

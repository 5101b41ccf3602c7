#!/usr/bin/env bash
# Runs the whole Lockbox test suite; installs what the tests need on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "test dependencies"
if ! command -v openssl >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq openssl
fi
# Python tools live in virtual environments under $LOCKBOX_TOOLS (nothing is
# installed into the system's Python).
tools="${LOCKBOX_TOOLS:-$HOME/.cache/lockbox-tools}"
mkdir -p "$tools"
lint_venv="$tools/pkilint-venv"
if [ ! -x "$lint_venv/bin/lint_pkix_cert" ] || [ ! -x "$lint_venv/bin/lint_crl" ]; then
  if ! python3 -m venv "$lint_venv" >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$lint_venv"
  fi
  "$lint_venv/bin/python" -m pip install --quiet --disable-pip-version-check "pkilint==0.13.3"
fi
export PATH="$lint_venv/bin:$PATH"
hash -r
# Certipy (certipy-ad needs Python >= 3.12) in its own virtualenv, for the interop tests.
venv="$tools/certipy-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import certipy, cryptography, certsrv" >/dev/null 2>&1; then
  py312=""
  for cand in python3.13 python3.12 "$HOME/.pyenv/versions/3.12.1/bin/python" "$HOME/.pyenv/versions/3.13.0/bin/python" /root/.pyenv/versions/3.12.1/bin/python; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      py312=$(command -v "$cand"); break
    fi
  done
  if [ -z "$py312" ]; then
    apt-get update -qq && apt-get install -y -qq python3.12 python3.12-venv >/dev/null 2>&1 || true
    py312=$(command -v python3.12 || true)
  fi
  [ -n "$py312" ] || { echo "Python >= 3.12 is required for certipy-ad" >&2; exit 1; }
  mkdir -p "$tools"
  "$py312" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "certipy-ad==5.1.0" "certsrv==2.1.1"
fi
export LOCKBOX_CERTIPY_PYTHON="$venv/bin/python"
# Headless Chromium (Debian's; Playwright cannot download browsers here) and
# playwright-core for the browser tests (tests/browser).
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
# PostgreSQL server binaries for the scale-out tests and the suites' second run
# (scripts/pg-cluster.sh starts throw-away clusters on loopback ports).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq postgresql postgresql-client >/dev/null
fi
# SoftHSM2 (a PKCS#11 token in files) and OpenSC's pkcs11-tool for the
# hardware-key tests; LOCKBOX_REQUIRE_SOFTHSM makes those tests fail, not
# skip, if SoftHSM2 is missing.
if ! command -v softhsm2-util >/dev/null 2>&1 || ! command -v pkcs11-tool >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq softhsm2 opensc >/dev/null
fi
export LOCKBOX_REQUIRE_SOFTHSM=1
if ! cargo audit --version >/dev/null 2>&1; then
  cargo install --quiet --locked cargo-audit
fi
openssl version
lint_pkix_cert --help >/dev/null
softhsm2-util --version

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (SQLite, the embedded default)"
test_log=$(mktemp)
cargo test --workspace --locked 2>&1 | tee "$test_log"

step "tests on PostgreSQL (store, engine, server and CLI suites; LOCKBOX_TEST_DATABASE)"
pg_dir=$(mktemp -d)
trap 'bash scripts/pg-cluster.sh stop "$pg_dir" >/dev/null 2>&1 || true; rm -rf "$pg_dir"' EXIT
pg_url=$(bash scripts/pg-cluster.sh start "$pg_dir")
echo "PostgreSQL test server: $pg_url"
LOCKBOX_TEST_DATABASE="$pg_url" cargo test --locked -p lockbox-store -p lockbox-engine -p lockbox-server -p lockbox-cli 2>&1 | tee -a "$test_log"
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$test_log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$test_log" | awk '{s+=$1} END {print s+0}')
rm -f "$test_log"

step "fuzzing (bounded regression run of every target)"
fuzz_seconds="${LOCKBOX_FUZZ_SECONDS:-10}"
if ! cargo +nightly --version >/dev/null 2>&1; then
  # cargo-fuzz needs a nightly toolchain (sanitizers); CI has one and must fuzz.
  [ -z "${CI:-}" ] || { echo "CI requires the nightly toolchain for fuzzing" >&2; exit 1; }
  echo "SKIPPED: no nightly Rust toolchain (rustup toolchain install nightly); fuzz targets not run" >&2
  fuzz_seconds=0
elif ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --quiet --locked cargo-fuzz
fi
[ "$fuzz_seconds" = 0 ] || (
  cd fuzz
  cargo +nightly fuzz build
  for t in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$t"
    log="$(mktemp)"
    if cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 >"$log" 2>&1; then
      echo "$t: $(grep -E '^Done' "$log" | tail -n 1)"
    else
      tail -n 40 "$log"; echo "fuzz target $t failed (input saved under fuzz/artifacts/$t)" >&2; exit 1
    fi
    rm -f "$log"
  done
)

step "dependency audit"
advisories="../shared/advisory-db"
if [ -d "$advisories" ]; then
  cargo audit --no-fetch -d "$advisories"
else
  echo "no advisory database at $advisories; skipping cargo audit" >&2
  [ -z "${CI:-}" ] || { echo "CI requires the advisory database" >&2; exit 1; }
fi

# The plain closing line CI reads.
echo "tests: ${passed} passed, ${failed} failed"

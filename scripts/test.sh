#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run), stopping at the first failure:
#   set-up (with browser) -> PostgreSQL -> ruff check -> ruff format --check
#   -> mypy -> pytest (tests/, tutorials/, notebooks/) -> book build.
# PostgreSQL comes from scripts/ci_postgres.sh (EVENTCORE_DATABASE_URL is
# exported for the tests); a throwaway cluster is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test.sh: FAILED: $*" >&2; exit 1; }
step() { echo; echo "==> $*"; }
run() { # run NAME COMMAND...: one step, timed; a failing step ends the run
  local name=$1 start=$SECONDS
  shift
  step "$name"
  "$@" || fail "$name (exit $?)"
  echo "--- $name ok ($((SECONDS - start)) s)"
}

run "set-up" bash scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH" # tests may call the CLI, jupyter, ...

step "PostgreSQL"
PG_ENV=$(bash scripts/ci_postgres.sh) || fail "PostgreSQL is required (see the message above)"
eval "$PG_ENV"
if [ -n "${EVENTCORE_PG_STOP:-}" ]; then
  trap 'echo "==> stopping the throwaway PostgreSQL"; eval "$EVENTCORE_PG_STOP"' EXIT
  trap 'exit 130' INT TERM # run the EXIT trap on interruption too
fi
echo "EVENTCORE_DATABASE_URL=$EVENTCORE_DATABASE_URL"

run "ruff check" ruff check .
run "ruff format --check" ruff format --check .
run "mypy" mypy

step "pytest"
start=$SECONDS
rc=0
pytest -p no:cacheprovider -ra --durations=10 || rc=$?
[ "$rc" -ne 5 ] || fail "pytest collected no tests (exit 5)"
[ "$rc" -eq 0 ] || fail "pytest (exit $rc)"
echo "--- pytest ok ($((SECONDS - start)) s)"

run "book" bash scripts/build_book.sh

echo
echo "test.sh: all steps passed ($SECONDS s)"

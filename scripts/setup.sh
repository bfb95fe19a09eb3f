#!/usr/bin/env bash
# Idempotent set-up of a (fresh) Debian machine for eventcore-lab.
#
#   bash scripts/setup.sh            # graphviz + .venv with `pip install -e '.[all]'`
#   bash scripts/setup.sh --browser  # ... plus chromium (or EVENTCORE_BROWSER=1)
#   bash scripts/setup.sh --test     # everything scripts/test.sh needs: chromium,
#                                    # PostgreSQL server binaries, npm (book build)
#
# apt-get runs only for packages whose program is missing (so not at all when
# `dot` etc. are already there), as root or through sudo. pip runs again only
# when pyproject.toml changed since the last successful install.
# Env: PYTHON (interpreter for a new .venv, default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*"; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

BROWSER=${EVENTCORE_BROWSER:-0}
TEST=0
for arg in "$@"; do
  case $arg in
    --browser) BROWSER=1 ;;
    --test) TEST=1 BROWSER=1 ;;
    *) die "unknown option $arg (use --browser or --test)" ;;
  esac
done

# 1. System packages: collect the missing ones.
PKGS=()
command -v dot >/dev/null || PKGS+=(graphviz)
[ "$BROWSER" != 1 ] || command -v chromium >/dev/null || PKGS+=(chromium)
if [ "$TEST" = 1 ]; then
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || PKGS+=(postgresql)
  command -v npm >/dev/null || PKGS+=(npm)
fi

if [ ${#PKGS[@]} -eq 0 ]; then
  say "system packages present (dot$([ "$BROWSER" = 1 ] && echo ', chromium')), skipping apt"
else
  if [ "$(id -u)" = 0 ]; then SUDO=()
  elif command -v sudo >/dev/null; then SUDO=(sudo)
  else die "need root or sudo to install: ${PKGS[*]}"
  fi
  command -v apt-get >/dev/null || die "no apt-get: install ${PKGS[*]} by hand"
  LOG=$(mktemp "${TMPDIR:-/tmp}/eventcore-apt.XXXXXX")
  say "apt-get install ${PKGS[*]} (log: $LOG)"
  export DEBIAN_FRONTEND=noninteractive
  { "${SUDO[@]}" apt-get update -q && "${SUDO[@]}" apt-get install -y -q "${PKGS[@]}"; } >"$LOG" 2>&1 ||
    { tail -n 30 "$LOG" >&2; die "apt-get failed (log: $LOG)"; }
  rm -f "$LOG"
  command -v dot >/dev/null || die "graphviz installed but 'dot' is still missing"
fi

# 2. Virtual environment.
if [ ! -x .venv/bin/python ]; then
  PY=${PYTHON:-python3}
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$PY is older than Python 3.11 (set PYTHON=/path/to/python3.11+)"
  say "creating .venv with $("$PY" -V 2>&1)"
  "$PY" -m venv .venv || die "'$PY -m venv' failed (Debian: apt-get install python3-venv)"
fi

# 3. The package and all extras, editable. The stamp holds pyproject.toml's hash.
STAMP=.venv/.eventcore-setup-stamp
WANT="all $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" = "$WANT" ]; then
  say ".venv is up to date with pyproject.toml, skipping pip"
else
  say "pip install -e '.[all]' (a few minutes on a fresh .venv)"
  PIP_DISABLE_PIP_VERSION_CHECK=1 .venv/bin/python -m pip install -q --progress-bar off -e '.[all]'
  echo "$WANT" >"$STAMP"
fi
say "done ($(.venv/bin/python -V 2>&1), dot: $(command -v dot))"

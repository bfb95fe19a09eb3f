#!/usr/bin/env bash
# Build the manual into book/_build/html, executing every tutorial notebook.
#
#   bash scripts/build_book.sh [extra sphinx-build options]
#
# First fetches (once) the JavaScript that renders widgets in the static HTML,
# RequireJS and @jupyter-widgets/html-manager, with `npm pack` into the
# git-ignored book/_static/vendor/, so the pages need no CDN. Sphinx then runs
# with -W (warnings are errors), -E (re-read, so re-execute, every page) and
# -T (print the full traceback, e.g. of a failing notebook cell).
set -euo pipefail
cd "$(dirname "$0")/.."

HTML_MANAGER=@jupyter-widgets/html-manager@1.0.6 # the version myst-nb expects
REQUIREJS=requirejs@2.3.8
VENDOR=book/_static/vendor

die() { echo "build_book: ERROR: $*" >&2; exit 1; }

if [ "$(cat "$VENDOR/VERSIONS" 2>/dev/null || true)" = "$HTML_MANAGER $REQUIREJS" ]; then
  echo "build_book: widget JavaScript already in $VENDOR"
else
  command -v npm >/dev/null || die "npm is needed to fetch $HTML_MANAGER and $REQUIREJS (apt-get install npm)"
  echo "build_book: npm pack $HTML_MANAGER $REQUIREJS -> $VENDOR"
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  (cd "$TMP" && NPM_CONFIG_UPDATE_NOTIFIER=false npm pack --silent "$HTML_MANAGER" "$REQUIREJS" >/dev/null) ||
    die "npm pack failed"
  mkdir -p "$TMP/manager" "$TMP/requirejs"
  tar -xzf "$TMP"/jupyter-widgets-html-manager-*.tgz -C "$TMP/manager"
  tar -xzf "$TMP"/requirejs-*.tgz -C "$TMP/requirejs"
  rm -rf "$VENDOR"
  mkdir -p "$VENDOR/html-manager"
  cp -R "$TMP/manager/package/dist/." "$TMP/manager/package/LICENSE" "$VENDOR/html-manager/"
  find "$VENDOR" -name '*.map' -delete # source maps: 11 of the 26 MB
  cp "$TMP/requirejs/package/require.js" "$VENDOR/require.js"
  echo "$HTML_MANAGER $REQUIREJS" >"$VENDOR/VERSIONS"
fi

exec .venv/bin/sphinx-build -W --keep-going -E -T -b html book book/_build/html "$@"

#!/usr/bin/env bash
# Set up (like scripts/setup.sh) and open JupyterLab on the workbench tour.
#
#   bash scripts/lab.sh                      # opens notebooks/start-here.ipynb in your browser
#   bash scripts/lab.sh --no-browser --port 8899   # extra options go to `jupyter lab`
#                                            # (as root, e.g. in a container, add --allow-root)
#
# The project's JupyterLab defaults (lab-settings/overrides.json: tutorials open as
# notebooks) are installed into the .venv's settings, so they apply to this
# environment only. The server runs with lab-settings/jupyter_server_config.json
# (notebooks are saved without the kernel's machine-specific language_info, so
# opening a tracked notebook does not change it in git).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# overrides.d/ (not overrides.json) so that overrides of your own in the .venv stay as they are
SETTINGS=.venv/share/jupyter/lab/settings/overrides.d
mkdir -p "$SETTINGS"
cp lab-settings/overrides.json "$SETTINGS/eventcore-lab.json"
echo "lab: JupyterLab defaults installed in $SETTINGS/eventcore-lab.json"
echo "lab: opening notebooks/start-here.ipynb (stop with Ctrl-C)"
exec .venv/bin/jupyter lab --config="$PWD/lab-settings/jupyter_server_config.json" \
  --ServerApp.root_dir="$PWD" "$@" notebooks/start-here.ipynb

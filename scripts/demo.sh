#!/usr/bin/env bash
# Install the server and run the embedded demo (the README's first command):
#
#   bash scripts/demo.sh               # the same as: pip install -e . && loyalty demo
#   bash scripts/demo.sh --orders 500  # extra arguments go to `loyalty demo`
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR source=python_setup.sh
source scripts/python_setup.sh
python_setup_pip
echo "+ python3 -m pip install -e .  (quiet; about 30 s the first time)"
python3 -m pip install --progress-bar off --quiet -e .
exec python3 -c 'from plugin_server.cli import main; main()' demo "$@"

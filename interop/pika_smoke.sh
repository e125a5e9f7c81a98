#!/usr/bin/env bash
# The pika smoke test: a venv with the pinned clients (made once), then the
# script against the given warren binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
warren="${1:?usage: pika_smoke.sh PATH_TO_WARREN}"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi
exec "$venv/bin/python" "$here/pika_smoke.py" "$warren"

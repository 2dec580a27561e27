#!/usr/bin/env bash
# Install Toxiproxy 2.12.0 as DEST_DIR/toxiproxy-server and DEST_DIR/toxiproxy-cli, for this
# repository: `wsconn install toxiproxy --dest DEST_DIR` (pytest_wsconn/provision/install.py)
# does the work, so the repository and pip users get the same pinned, version-stamped build.
#
# Usage: bash toxiproxy/install.sh [DEST_DIR]     (default: toxiproxy/bin in this repo)
#        GO=/path/to/go bash toxiproxy/install.sh  (build with that Go toolchain)
#        PYTHON=/path/to/python3 ...               (default: .venv/bin/python, else python3)
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST_DIR="$(realpath -m "${1:-${REPO_DIR}/toxiproxy/bin}")"

python="${PYTHON:-}"
if [[ -z "${python}" ]]; then
    if [[ -x "${REPO_DIR}/.venv/bin/python" ]]; then python="${REPO_DIR}/.venv/bin/python"; else python=python3; fi
fi
args=(install toxiproxy --dest "${DEST_DIR}")
if [[ -n "${GO:-}" ]]; then
    args+=(--go "${GO}")
fi
# From the repository's root, so a python3 without the package installed imports it from here.
cd "${REPO_DIR}"
exec "${python}" -m pytest_wsconn "${args[@]}"

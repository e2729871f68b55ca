#!/usr/bin/env bash
# Install what mldashfs needs on Debian (system packages, then a .venv with the project and its extras).
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test   (default: plots,torch)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-plots,torch}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

need=()
for pkg in fuse3 libfuse3-dev pkg-config gcc attr rsync git sqlite3 ca-certificates; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need+=(python3 python3-venv python3-dev); fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -e /dev/fuse ]; then
  echo "setup: /dev/fuse is missing: this machine cannot mount FUSE filesystems" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c 'import mldashfs, ml_dash, pyfuse3' || { echo "setup: the install failed" >&2; exit 1; }
echo "setup: ready (.venv/bin/mldashfs)"

#!/usr/bin/env bash
# Quick start: install, save a checkpoint/figure/video with the SDK, list them, and mount the store.
# Usage: scripts/demo.sh [MOUNTPOINT]   (default ./mnt; the store is ./.ml-dash)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plots,torch
mnt="${1:-./mnt}"
export ML_DASH_STORE="${ML_DASH_STORE:-$PWD/.ml-dash}"
# The SDK makes the store on first use; mldashfs commands never make one by accident
# (`mldashfs init DIR`, or `--create` on put and mount, does).
.venv/bin/python scripts/demo.py
echo; echo "\$ mldashfs ls -r demo/quickstart/run1"
.venv/bin/mldashfs ls -r demo/quickstart/run1
if mountpoint -q "$mnt" 2>/dev/null; then .venv/bin/mldashfs umount "$mnt"; fi
mkdir -p "$mnt"
.venv/bin/mldashfs mount --store "$ML_DASH_STORE" "$mnt"
echo; echo "\$ ls -l $mnt/demo/quickstart/run1/models"; ls -l "$mnt/demo/quickstart/run1/models"
echo; echo "\$ getfattr -d $mnt/demo/quickstart/run1/models/best.pt"; getfattr -d "$mnt/demo/quickstart/run1/models/best.pt"
echo; echo "The store is mounted at $mnt (unmount: .venv/bin/mldashfs umount $mnt)"

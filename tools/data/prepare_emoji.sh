#!/usr/bin/env bash
# Fetches the emoji sources with the ordinary npm client and builds data/emoji64.npz (see DATA_CARD.md).
# Usage (from the repository root): bash tools/data/prepare_emoji.sh   Never run in CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p data/pkg
for pkg in emoji-datasource-google@16.0.0 emojilib@4.0.3; do
  tarball="data/pkg/${pkg%@*}-${pkg#*@}.tgz"
  [ -f "$tarball" ] || (cd data/pkg && npm pack --silent "$pkg" >/dev/null)
done
/usr/bin/python3 tools/data/prepare_emoji.py --pkg data/pkg --out data/emoji64.npz "$@"

#!/usr/bin/env bash
# Installs what the Python tools under tools/ need on Debian: PyTorch (CPU), NumPy and an OpenMP BLAS.
# Idempotent: packages already installed are left as they are. CI does not need this (it never runs Python).
set -euo pipefail
packages=(python3-torch python3-numpy libopenblas0-openmp)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "python deps already installed: ${packages[*]}"
    exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
/usr/bin/python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"

#!/usr/bin/env bash
# Installs every Debian package sdshell needs to build, test and run.
# Idempotent: packages already present are left alone; safe to run twice.
# Must run as root (or through sudo) on Debian 12.
set -euo pipefail

PACKAGES=(
  pkg-config
  libedit-dev          # line editing for the interactive prompt
  libpng-dev           # PNG read/write with text chunks
  libjpeg62-turbo-dev  # JPEG training images (libjpeg-turbo)
  zlib1g-dev           # gzip (the shipped CLIP vocabulary)
  libopenblas-dev      # cblas sgemm
  libdnnl-dev          # oneDNN convolutions
  ocl-icd-opencl-dev   # OpenCL ICD loader
  opencl-headers
  pocl-opencl-icd      # OpenCL on the CPU, for tests
  libclblast-dev       # GEMM on OpenCL
  libfreetype-dev      # grid labels
  libzmq3-dev          # ZeroMQ, the Jupyter kernel's transport
  python3 python3-venv # the CI checks' Python (the Jupyter client test environment, PNG comparison)
  slurm-wlm munge      # a one-node Slurm for the sharded-run check (scripts/check_slurm_shards.sh)
  fonts-dejavu-core    # the font grid labels are drawn with
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "bootstrap: done"

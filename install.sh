#!/usr/bin/env bash
# Install mmsurv and everything its stages use into the active Python environment
# (a virtualenv is recommended: python3 -m venv .venv && . .venv/bin/activate).
#
# Order matters on CPU-only machines:
#  1. torch is pinned to 2.13.0 first: that is a local CPU wheel here, while an unpinned
#     "torch" (also pulled in by MONAI) downloads gigabytes of CUDA packages.
#  2. PyRadiomics only builds with numpy (and versioneer) already installed and without
#     pip's build isolation.
#  3. torchvision is never installed: its wheels do not match this torch; networks come from MONAI.
set -euo pipefail
cd "$(dirname "$0")"
pip_install() { python -m pip install --disable-pip-version-check --quiet "$@"; }
pip_install "numpy==2.4.6" "versioneer==0.29" "setuptools>=68" wheel
pip_install "torch==2.13.0"
pip_install --no-build-isolation "pyradiomics==3.0.1"
pip_install -r requirements.txt
pip_install --no-deps -e .
# --with-slurm (the test command passes it): Debian's SLURM and munge packages for the SLURM
# profile's test (tests/workflow/test_slurm.py starts a throwaway one-node cluster), as root
# where apt-get exists. System daemons, so only on request; without them that test is skipped
# and says why.
slurm_packages=(slurmctld slurmd slurm-client munge)
if [ "${1:-}" = --with-slurm ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v slurmctld >/dev/null; then
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${slurm_packages[@]}" >/dev/null 2>&1
  }
  apt_install || { apt-get update -qq >/dev/null 2>&1 && apt_install; } ||
    echo "install.sh: ${slurm_packages[*]} not installed: the SLURM test will be skipped"
fi
python - <<'PY'
import torch, radiomics, monai, openslide, SimpleITK, lifelines, sksurv, snakemake  # noqa: F401
print(f"mmsurv environment ready: torch {torch.__version__}, monai {monai.__version__}, "
      f"openslide {openslide.__library_version__}, snakemake {snakemake.__version__}")
PY

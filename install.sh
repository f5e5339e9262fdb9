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
python - <<'PY'
import torch, radiomics, monai, openslide, SimpleITK, lifelines, sksurv, snakemake  # noqa: F401
print(f"mmsurv environment ready: torch {torch.__version__}, monai {monai.__version__}, "
      f"openslide {openslide.__library_version__}, snakemake {snakemake.__version__}")
PY

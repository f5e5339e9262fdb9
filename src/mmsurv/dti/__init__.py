"""DTI input of the seed-4 study (Yan et al. 2021): tumour slices of the FA, MD, AD, RD maps.

:mod:`mmsurv.dti.maps` reads a patient's four scalar maps from the images sheet, or fits a
diffusion tensor (dipy) to the raw DWI (``dwi``, ``bval``, ``bvec``), and resamples the maps
onto the tumour mask's grid in physical space. :mod:`mmsurv.dti.slices` takes 4 equally spaced
axial slices inside the tumour's bounding box from each map, crops them to the box and resizes
them (16 crops, map-major; diffusivities in 10^-3 mm^2/s) and draws the montage.
:mod:`mmsurv.dti.stage` runs it for one patient of the workflow (``results/dti/``) and builds
the QC table. SimpleITK sizes and spacings are (x, y, z) in mm; numpy arrays are (z, y, x).
"""

from __future__ import annotations

__all__ = ["maps", "slices", "stage"]

"""MRI preprocessing: reading volumes, bringing a patient's sequences onto one grid, and QC.

:mod:`mmsurv.mri.io` reads NIfTI, NRRD, MetaImage files and DICOM series (folders) into
SimpleITK images and writes them atomically. :mod:`mmsurv.mri.preprocess` reorients every
sequence to one orientation (LPS by default), resamples it onto a grid built from a reference
sequence (T1ce, else T1) at a chosen spacing in mm, checks the tumour mask's geometry against that
reference, estimates a brain/head mask, corrects the intensity bias with N4, z-scores inside the
head mask, optionally adds a T1ce - T1 subtraction channel, and crops a box around the tumour
resized to a fixed number of voxels; :func:`mmsurv.mri.preprocess.preprocess_patient` runs all
of it for one patient and returns a JSON-able QC record. :mod:`mmsurv.mri.qc` draws the
per-patient montage (before / after N4, bias field, mask contours). SimpleITK sizes, indices and
spacings are (x, y, z); numpy arrays from ``sitk.GetArrayFromImage`` are (z, y, x); lengths are
in millimetres.
"""

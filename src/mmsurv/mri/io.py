"""Reading and writing MRI volumes with SimpleITK.

Files: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage (``.mha``,
``.mhd``) and anything else ``sitk.ReadImage`` understands; a folder is read as one DICOM
series. Every failure is a :class:`VolumeError` naming the patient (when known), the file and
the reason.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

__all__ = ["VolumeError", "read_volume", "read_mask", "write_volume", "volume_suffix"]

_log = logging.getLogger(__name__)

#: Suffixes made of two dot-separated parts (checked before the plain suffix).
_DOUBLE_SUFFIXES = (".nii.gz", ".img.gz", ".hdr.gz")
#: Formats that write a header and a separate data file: written through a temporary folder.
_TWO_FILE_SUFFIXES = (".mhd", ".hdr", ".nhdr")


class VolumeError(ValueError):
    """A volume or mask that cannot be used, with the patient, the file and the reason.

    Parameters
    ----------
    reason
        What is wrong.
    path
        The file or folder concerned, if any.
    patient_id
        The patient, when known.
    """

    def __init__(
        self, reason: str, path: str | os.PathLike | None = None, patient_id: str | None = None
    ) -> None:
        self.reason = reason
        self.path = None if path is None else Path(path)
        self.patient_id = patient_id
        parts = []
        if patient_id is not None:
            parts.append(f"patient {patient_id}")
        if path is not None:
            parts.append(f"file {self.path}")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)


def volume_suffix(path: str | os.PathLike) -> str:
    """The file-format suffix of ``path`` (``".nii.gz"`` for gzipped NIfTI), lower case."""
    name = Path(path).name.lower()
    for double in _DOUBLE_SUFFIXES:
        if name.endswith(double):
            return double
    return Path(name).suffix


def _read_dicom_series(folder: Path, patient_id: str | None) -> sitk.Image:
    """Read the single DICOM series stored in ``folder``."""
    if not any(p.is_file() for p in folder.iterdir()):
        raise VolumeError("folder holds no DICOM series (it has no files)", folder, patient_id)
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise VolumeError("folder holds no DICOM series", folder, patient_id)
    if len(series) > 1:
        raise VolumeError(
            f"folder holds {len(series)} DICOM series ({', '.join(series)}); expected one",
            folder,
            patient_id,
        )
    files = reader.GetGDCMSeriesFileNames(str(folder), series[0])
    reader.SetFileNames(files)
    _log.debug("reading DICOM series %s: %d files", series[0], len(files))
    return reader.Execute()


def _itk_reason(err: RuntimeError) -> str:
    """The last line of a SimpleITK exception message, without its ``sitk::ERROR:`` prefix."""
    lines = str(err).strip().splitlines()
    last = lines[-1] if lines else type(err).__name__
    return last.split("ERROR:", 1)[-1].strip()


def _read_any(path: str | os.PathLike, patient_id: str | None) -> sitk.Image:
    """Read a file or DICOM folder as a 3-D scalar image (pixel type as stored)."""
    path = Path(path)
    if not path.exists():
        raise VolumeError("file not found", path, patient_id)
    try:
        image = _read_dicom_series(path, patient_id) if path.is_dir() else sitk.ReadImage(str(path))
    except RuntimeError as err:  # SimpleITK reports every read failure as RuntimeError
        raise VolumeError(f"cannot read volume ({_itk_reason(err)})", path, patient_id) from err
    if image.GetDimension() != 3:
        raise VolumeError(f"expected a 3-D volume, got {image.GetDimension()}-D", path, patient_id)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise VolumeError(
            f"expected one value per voxel, got {image.GetNumberOfComponentsPerPixel()}",
            path,
            patient_id,
        )
    return image


def read_volume(path: str | os.PathLike, patient_id: str | None = None) -> sitk.Image:
    """Read an MRI sequence (file or DICOM series folder) as a float32 image.

    Parameters
    ----------
    path
        A NIfTI, NRRD or MetaImage file, or a folder holding exactly one DICOM series.
    patient_id
        Named in the error message.

    Returns
    -------
    SimpleITK.Image
        3-D ``sitkFloat32`` image; size, spacing (mm) and origin (mm) are (x, y, z).

    Raises
    ------
    VolumeError
        Missing or unreadable file, a folder with no or several DICOM series, a volume that is
        not 3-D scalar, or one holding non-finite values.
    """
    image = sitk.Cast(_read_any(path, patient_id), sitk.sitkFloat32)
    if not np.isfinite(sitk.GetArrayViewFromImage(image)).all():
        raise VolumeError("volume holds NaN or infinite values", path, patient_id)
    return image


def read_mask(path: str | os.PathLike, patient_id: str | None = None) -> sitk.Image:
    """Read a label mask (tumour segmentation) as a UInt8 image.

    Parameters
    ----------
    path
        A file or DICOM series folder, as for :func:`read_volume`.
    patient_id
        Named in the error message.

    Returns
    -------
    SimpleITK.Image
        3-D ``sitkUInt8`` label image.

    Raises
    ------
    VolumeError
        As :func:`read_volume`, and when a value is not an integer in 0..255.
    """
    image = _read_any(path, patient_id)
    values = sitk.GetArrayViewFromImage(image)
    if not np.issubdtype(values.dtype, np.integer):
        finite = np.isfinite(values)
        if not finite.all() or not np.array_equal(values, np.round(values)):
            raise VolumeError("mask values are not all integers", path, patient_id)
    low, high = (values.min(), values.max()) if values.size else (0, 0)
    if low < 0 or high > 255:
        raise VolumeError(f"mask values {low}..{high} are outside 0..255", path, patient_id)
    return sitk.Cast(image, sitk.sitkUInt8)


def _write_single_file(image: sitk.Image, path: Path, suffix: str) -> None:
    """Write to ``.NAME.tmpXXXX{suffix}`` beside ``path``, then rename onto ``path``."""
    stem = path.name[: len(path.name) - len(suffix)]
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.tmp", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        sitk.WriteImage(image, tmp, True)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_two_files(image: sitk.Image, path: Path) -> None:
    """Write a header + data file pair in a temporary folder beside ``path``, then move both.

    The header names its data file, so both keep their final names; the data file is moved
    first so that the header never points at a missing file.
    """
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp", dir=path.parent))
    try:
        sitk.WriteImage(image, str(tmp_dir / path.name), True)
        written = sorted(tmp_dir.iterdir(), key=lambda p: p.name == path.name)
        for item in written:
            os.replace(item, path.parent / item.name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_volume(image: sitk.Image, path: str | os.PathLike) -> None:
    """Write ``image`` atomically, in the format given by the suffix of ``path``.

    The image is written under a temporary name with the same suffix in the same folder and
    renamed onto ``path`` (``os.replace``), so an interrupted write never leaves a partial file
    under the final name. Parent folders are created. Compression is on where the format has
    it.

    Parameters
    ----------
    image
        Any SimpleITK image.
    path
        Destination, e.g. ``out/t1.nii.gz``, ``out/t1.nrrd`` or ``out/t1.mha``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = volume_suffix(path)
    if not suffix:
        raise VolumeError("no file suffix: cannot choose a volume format", path)
    if suffix in _TWO_FILE_SUFFIXES:
        _write_two_files(image, path)
    else:
        _write_single_file(image, path, suffix)
    _log.debug("wrote %s", path)

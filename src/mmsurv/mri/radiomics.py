"""Radiomics features (PyRadiomics) of a patient's preprocessed sequences inside the tumour mask.

One patient's features are a :class:`pandas.Series` named by the patient id whose index is
``{sequence}_{feature}``, ``feature`` being PyRadiomics' key
``{imageType}_{featureClass}_{FeatureName}`` (``t1ce_original_glcm_Contrast``); values are
floats in PyRadiomics' units (``shape`` features in mm, mm^2, mm^3; intensity features in the
units of the input, z-scores for mmsurv's preprocessed volumes). The workflow writes one TSV per
patient (:func:`write_patient_features`, ``results/mri/radiomics/{patient}.tsv``) and merges them
into ``results/mri/radiomics.parquet`` (:func:`merge_patient_features`, :func:`write_radiomics`),
patients x features with index ``patient_id``.

What PyRadiomics computes (image types, feature classes, bin width, ...) is its parameter file,
``config/radiomics.yaml`` by default; the tumour is the union of the mask's tumour labels
(:func:`tumor_binary_mask`), passed to PyRadiomics as label 1.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from mmsurv.io import atomic_path

__all__ = [
    "tumor_binary_mask",
    "extract_patient",
    "radiomics_table",
    "write_radiomics",
    "read_radiomics",
    "write_patient_features",
    "read_patient_features",
    "merge_patient_features",
]

log = logging.getLogger(__name__)

#: A volume given as a file (NIfTI, NRRD, MetaImage, ...) or already read.
ImageLike = str | os.PathLike | sitk.Image

#: BraTS labels counted as tumour: 1 necrosis, 2 edema, 4 enhancing.
BRATS_TUMOR_LABELS = (1, 2, 4)

_IN_MEMORY = "<in-memory image>"


def _quiet_radiomics() -> None:
    """Keep PyRadiomics' own logger (and its stderr handler) and its schema validator's
    (pykwalify) at WARNING; ours is unaffected."""
    import radiomics

    radiomics.setVerbosity(logging.WARNING)
    logging.getLogger("radiomics").setLevel(logging.WARNING)
    logging.getLogger("pykwalify").setLevel(logging.WARNING)
    glcm_logger = logging.getLogger("radiomics.glcm")
    if not any(isinstance(f, _SumAverageNotice) for f in glcm_logger.filters):
        glcm_logger.addFilter(_SumAverageNotice())


class _SumAverageNotice(logging.Filter):
    """Drop PyRadiomics' per-extraction notice that SumAverage = 2 x JointAverage.

    The notice is a WARNING on every extraction with a symmetrical GLCM (PyRadiomics' default)
    while SumAverage is enabled (it is among the default 107 features the seed setting uses);
    it says nothing about the data.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Sum Average = 2 * Joint Average" not in record.getMessage()


def _describe(source: ImageLike) -> str:
    return _IN_MEMORY if isinstance(source, sitk.Image) else str(source)


def _read(source: ImageLike, patient_id: str, what: str) -> sitk.Image:
    """``source`` as a SimpleITK image; a file that cannot be read is a ValueError naming it."""
    if isinstance(source, sitk.Image):
        return source
    path = Path(source)
    if not path.exists():
        raise ValueError(f"patient {patient_id}, {what}: file {path} does not exist")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise ValueError(f"patient {patient_id}, {what}: cannot read file {path}: {err}") from err


def tumor_binary_mask(mask: sitk.Image, labels: Iterable[int] = BRATS_TUMOR_LABELS) -> sitk.Image:
    """Binary tumour mask: 1 where ``mask`` holds any of ``labels``, else 0.

    Parameters
    ----------
    mask
        Label map (BraTS labels 1 necrosis, 2 edema, 4 enhancing, or a 0/1 mask: a 0/1 mask
        gives itself, since label 1 is among the defaults).
    labels
        Voxel values counted as tumour.

    Returns
    -------
    A UInt8 image on ``mask``'s grid (same size, spacing in mm, origin and direction).
    """
    values = sitk.GetArrayViewFromImage(mask)
    binary = np.isin(values, np.asarray(list(labels))).astype(np.uint8)
    out = sitk.GetImageFromArray(binary)
    out.CopyInformation(mask)
    return out


def _extractor(params_file: str | os.PathLike):
    """A PyRadiomics feature extractor configured by ``params_file`` (PyRadiomics YAML/JSON)."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    _quiet_radiomics()
    path = Path(params_file)
    if not path.is_file():
        raise ValueError(f"PyRadiomics parameter file {path} does not exist")
    with warnings.catch_warnings():
        # pykwalify (PyRadiomics' schema validator) loads its extensions with the deprecated
        # importlib load_module(); nothing we can change
        warnings.filterwarnings("ignore", message=r".*load_module\(\)", category=DeprecationWarning)
        return RadiomicsFeatureExtractor(str(path))


def extract_patient(
    patient_id: str,
    images: Mapping[str, ImageLike],
    mask: ImageLike,
    params_file: str | os.PathLike,
    sequences: Sequence[str],
    tumor_labels: Iterable[int] = BRATS_TUMOR_LABELS,
) -> pd.Series:
    """PyRadiomics features of each of ``sequences`` inside the patient's tumour.

    Parameters
    ----------
    patient_id
        The patient (the returned series' name; named in every error).
    images
        Sequence name -> volume (file path or SimpleITK image), e.g. the preprocessed
        ``results/mri/preprocessed/{patient}/{channel}.nii.gz``. Only ``sequences`` are used.
    mask
        Tumour label map (file or image) on the sequences' grid (mm); BraTS labels or 0/1.
        A grid that differs slightly is resampled onto each image by PyRadiomics
        (``correctMask`` in the parameter file).
    params_file
        PyRadiomics parameter file (``config/radiomics.yaml``).
    sequences
        Sequences to extract, in the order of the output.
    tumor_labels
        Mask values counted as tumour (merged into label 1 for PyRadiomics).

    Returns
    -------
    Series named ``patient_id``, index ``{sequence}_{feature}`` (PyRadiomics' feature keys,
    ``diagnostics_*`` keys left out), float values: about 107 per sequence with the default
    parameter file.

    Raises
    ------
    ValueError
        A sequence missing from ``images``, an unreadable file, an empty tumour mask, or a
        failing PyRadiomics extraction; the message names the patient, the sequence and the file.
    """
    missing = [s for s in sequences if s not in images]
    if missing:
        raise ValueError(
            f"patient {patient_id}: no volume for sequence(s) {', '.join(missing)} "
            f"(have {', '.join(images) or 'none'})"
        )
    if not sequences:
        raise ValueError(f"patient {patient_id}: no sequences to extract radiomics from")
    labels = tuple(int(v) for v in tumor_labels)
    binary = tumor_binary_mask(_read(mask, patient_id, "mask"), labels)
    n_voxels = int(sitk.GetArrayViewFromImage(binary).sum())
    if n_voxels == 0:
        raise ValueError(
            f"patient {patient_id}: tumour mask {_describe(mask)} is empty (no voxel with label "
            f"{', '.join(map(str, labels))}); cannot extract radiomics of sequence(s) "
            f"{', '.join(sequences)}"
        )
    extractor = _extractor(params_file)
    values: dict[str, float] = {}
    for seq in sequences:
        source = images[seq]
        image = _read(source, patient_id, f"sequence {seq}")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = extractor.execute(image, binary, label=1)
        except Exception as err:  # re-raised with the patient, sequence and file
            raise ValueError(
                f"patient {patient_id}, sequence {seq}: PyRadiomics failed on file "
                f"{_describe(source)} with mask {_describe(mask)}: {err}"
            ) from err
        for w in caught:
            log.warning("patient %s, sequence %s: PyRadiomics: %s", patient_id, seq, w.message)
        n_before = len(values)
        for key, value in result.items():
            if key.startswith("diagnostics_"):
                continue
            values[f"{seq}_{key}"] = float(value)
        log.info(
            "patient %s, sequence %s: %d radiomics features (%d tumour voxels)",
            patient_id,
            seq,
            len(values) - n_before,
            n_voxels,
        )
    series = pd.Series(values, name=patient_id, dtype=float)
    bad = series.index[~np.isfinite(series.to_numpy())]
    if len(bad):
        log.warning(
            "patient %s: %d non-finite radiomics value(s): %s",
            patient_id,
            len(bad),
            ", ".join(bad[:10]),
        )
    return series


def _sequence(column: str) -> str:
    """The sequence part of ``{sequence}_{imageType}_{featureClass}_{Feature}``.

    PyRadiomics' image types (``original``, ``wavelet-LLH``, ``log-sigma-1-0-mm-3D``), class
    names and feature names contain no underscore, so the sequence (which may) is what precedes
    the last three.
    """
    parts = column.rsplit("_", 3)
    if len(parts) != 4:
        raise ValueError(f"radiomics column {column!r} is not {{sequence}}_{{feature}}")
    return parts[0]


def radiomics_table(
    rows: Sequence[pd.Series], sequences: Sequence[str] | None = None
) -> pd.DataFrame:
    """Patients x features table of per-patient feature series.

    Parameters
    ----------
    rows
        One series per patient, as from :func:`extract_patient` (named by patient id).
    sequences
        Order of the sequences in the columns; default: the order in which they first appear
        in ``rows``.

    Returns
    -------
    Float frame, index ``patient_id`` (in the order of ``rows``), columns grouped by sequence
    (in that order) then sorted by feature name. A feature absent for a patient is NaN (logged).

    Raises
    ------
    ValueError
        No rows, or a patient id given twice.
    """
    if not rows:
        raise ValueError("no patients' radiomics to merge")
    ids = [str(r.name) for r in rows]
    dup = sorted({p for p in ids if ids.count(p) > 1})
    if dup:
        raise ValueError(f"patient(s) with more than one radiomics row: {', '.join(dup)}")
    columns = list(dict.fromkeys(c for r in rows for c in r.index))
    order = list(sequences) if sequences is not None else []
    for col in columns:
        seq = _sequence(col)
        if seq not in order:
            order.append(seq)
    rank = {s: i for i, s in enumerate(order)}
    columns.sort(key=lambda c: (rank[_sequence(c)], c[len(_sequence(c)) + 1 :]))
    table = pd.DataFrame([r.astype(float) for r in rows], index=pd.Index(ids, name="patient_id"))
    table = table.reindex(columns=columns).astype(float)
    for pid in table.index[table.isna().any(axis=1).to_numpy()]:
        n = int(table.loc[pid].isna().sum())
        log.warning("patient %s: %d radiomics feature(s) missing or NaN", pid, n)
    table.columns.name = None
    return table


def write_radiomics(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the patients x features table as parquet (index ``patient_id`` kept), atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, engine="pyarrow")
    log.info("wrote %s: %d patients x %d features", path, df.shape[0], df.shape[1])


def read_radiomics(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by :func:`write_radiomics` (index ``patient_id``, float columns)."""
    df = pd.read_parquet(path, engine="pyarrow")
    df.index = df.index.astype(str)
    return df


def write_patient_features(series: pd.Series, path: str | os.PathLike) -> None:
    """Write one patient's features as a TSV with columns ``patient_id``, ``feature``, ``value``.

    One row per feature (long format, readable with ``grep``); values are written with full
    precision, so :func:`read_patient_features` gives back the same floats. Atomic.
    """
    if series.name is None:
        raise ValueError("the features series needs a name (the patient id)")
    frame = pd.DataFrame(
        {
            "patient_id": str(series.name),
            "feature": series.index.astype(str),
            "value": series.to_numpy(float),
        }
    )
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, float_format="%.17g")


def read_patient_features(path: str | os.PathLike) -> pd.Series:
    """Read a TSV written by :func:`write_patient_features` into the patient's series.

    Raises
    ------
    ValueError
        Missing columns, several patients in one file, or a duplicated feature.
    """
    frame = pd.read_csv(
        path,
        sep="\t",
        dtype={"patient_id": str, "feature": str, "value": float},
        keep_default_na=False,
        na_values=["", "nan", "NaN"],
    )
    need = {"patient_id", "feature", "value"}
    if not need <= set(frame.columns):
        raise ValueError(f"{path}: need columns {sorted(need)}, found {list(frame.columns)}")
    patients = frame["patient_id"].unique()
    if len(patients) != 1:
        raise ValueError(f"{path}: expected one patient's features, found {len(patients)}")
    if frame["feature"].duplicated().any():
        dup = frame.loc[frame["feature"].duplicated(), "feature"].iloc[0]
        raise ValueError(f"{path}: feature {dup!r} given twice")
    return pd.Series(
        frame["value"].to_numpy(float),
        index=pd.Index(frame["feature"].to_numpy(), dtype=object),
        name=str(patients[0]),
    )


def merge_patient_features(
    paths: Iterable[str | os.PathLike], sequences: Sequence[str] | None = None
) -> pd.DataFrame:
    """Patients x features table (see :func:`radiomics_table`) from per-patient TSV files."""
    rows = [read_patient_features(p) for p in paths]
    table = radiomics_table(rows, sequences)
    log.info("merged radiomics of %d patients: %d features", *table.shape)
    return table

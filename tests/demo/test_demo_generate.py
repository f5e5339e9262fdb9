"""The files of a generated smoke cohort: config, sheets, matrices, truth and determinism."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import tifffile
import yaml

from mmsurv.demo import ID_PATTERN, PRESETS, make_demo_cohort
from mmsurv.demo.hazard import COMPONENTS, WEIGHTS
from mmsurv.demo.oracle import main, oracle_c_index
from mmsurv.demo.volumes import CHANNELS

SMOKE = PRESETS["smoke"]


def test_config_has_exactly_the_contract_keys(smoke_dir: Path) -> None:
    config = yaml.safe_load((smoke_dir / "config.yaml").read_text())
    assert list(config) == ["cohort", "endpoints", "clinical", "labels"]
    cohort = config["cohort"]
    assert list(cohort) == [
        "samples",
        "slides",
        "images",
        "rna",
        "scna",
        "id_pattern",
        "truth",
        "gene_sets",
    ]
    for key, value in cohort.items():
        for path in value if key == "gene_sets" else [] if key == "id_pattern" else [value]:
            assert Path(path).is_absolute() and Path(path).is_file(), key
    assert cohort["id_pattern"] == ID_PATTERN == "^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})"
    assert config["endpoints"] == {
        "os": {"time": "os_days", "event": "os_event"},
        "pfs": {"time": "pfs_days", "event": "pfs_event"},
    }
    assert config["clinical"] == {
        "numeric": ["age", "kps"],
        "categorical": ["sex", "grade", "resection", "radiotherapy", "chemotherapy", "idh_mutant"],
        "sets": {"small": ["age", "kps", "grade", "idh_mutant"]},
    }
    assert config["labels"] == {
        "idh": "idh_mutant",
        "codel": "codel_1p19q",
        "subtype": "who_subtype",
    }


@pytest.mark.parametrize("sheet", ["slides", "images"])
def test_every_referenced_file_exists(smoke_dir: Path, sheets, sheet: str) -> None:
    paths = sheets[sheet]["path"]
    assert len(paths) > 0
    assert not any(Path(p).is_absolute() for p in paths)
    missing = [p for p in paths if not (smoke_dir / p).is_file()]
    assert missing == []


def test_samples_endpoints_and_labels(sheets) -> None:
    s = sheets["samples"]
    assert len(s) == SMOKE.n_patients and s["patient_id"].is_unique
    assert s["patient_id"].str.fullmatch(r"TCGA-D0-\d{4}").all()
    for col in ("os_days", "os_event", "pfs_days", "pfs_event", "codel_1p19q"):
        assert s[col].notna().all() and s[col].dtype == np.int64, col
    # IDH status is unknown for a share of the patients (seed 2's unlabeled scans)
    assert 0.2 <= s["idh_mutant"].isna().mean() <= 0.4
    assert set(s["idh_mutant"].dropna()) == {0, 1}
    known = s["idh_mutant"].notna()
    assert (s["os_days"] >= 0).all() and (s["pfs_days"] >= 0).all()
    assert set(s["os_event"]) <= {0, 1} and set(s["pfs_event"]) <= {0, 1}
    assert (s["pfs_days"] <= s["os_days"]).all()
    assert 0.15 <= 1.0 - s["os_event"].mean() <= 0.6
    assert (s.loc[known & (s["codel_1p19q"] == 1), "idh_mutant"] == 1).all()
    expected = np.select(
        [s["idh_mutant"] == 0, s["codel_1p19q"] == 1], ["IDHwt", "IDHmut-codel"], "IDHmut-non-codel"
    )
    assert (s.loc[known, "who_subtype"] == expected[known.to_numpy()]).all()
    assert s["who_subtype"].notna().all()


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("age", None),
        ("kps", {40, 50, 60, 70, 80, 90, 100}),
        ("sex", {"M", "F"}),
        ("grade", {"G2", "G3", "G4"}),
        ("resection", {"GTR", "STR", "biopsy"}),
        ("radiotherapy", {"yes", "no"}),
        ("chemotherapy", {"yes", "no"}),
    ],
)
def test_clinical_values_and_missingness(sheets, column: str, values: set | None) -> None:
    col = sheets["samples"][column]
    present = col.dropna()
    if values is None:
        assert present.between(18, 90).all()
    else:
        assert set(present) <= values
    if column in ("age", "kps", "resection", "grade"):
        assert 0.02 <= col.isna().mean() <= 0.12
    else:
        assert col.notna().all()


def test_truth_is_the_sum_of_weighted_components(sheets) -> None:
    truth, samples = sheets["truth"], sheets["samples"]
    assert list(truth.columns) == ["patient_id", "risk", *COMPONENTS]
    assert list(truth["patient_id"]) == list(samples["patient_id"])
    assert np.allclose(truth[list(COMPONENTS)].sum(axis=1), truth["risk"])
    for name, weight in WEIGHTS.items():
        col = truth[f"risk_{name}"]
        assert abs(col.mean()) < 1e-9 and col.std(ddof=0) == pytest.approx(weight)


def test_modality_coverage(sheets) -> None:
    ids = set(sheets["samples"]["patient_id"])
    slides, images = sheets["slides"], sheets["images"]
    per_patient = slides.groupby("patient_id").size()
    assert set(per_patient.index) < ids and per_patient.max() == 2
    assert 0.05 <= 1 - len(per_patient) / len(ids) <= 0.15
    assert slides["slide_id"].str.fullmatch(r"TCGA-D0-\d{4}-01Z-00-DX[12]").all()
    channels = images.groupby("patient_id")["channel"].apply(set)
    assert set(channels.index) < ids
    assert 0.1 <= 1 - len(channels) / len(ids) <= 0.2
    dti, raw = {"fa", "md", "ad", "rd"}, {"dwi", "bval", "bvec"}
    full = set(CHANNELS) - raw  # DTI as maps; a tenth of the DTI patients has raw DWI instead
    kinds = (full, full - dti, full - {"mask"}, full - dti | raw)
    allowed = (*kinds, full - dti - {"mask"}, full - dti - {"mask"} | raw)
    assert all(c in allowed for c in channels)
    assert all(any(c == kind for c in channels) for kind in kinds)


def test_omics_columns_map_to_patients(sheets) -> None:
    ids = set(sheets["samples"]["patient_id"])
    pattern = re.compile(ID_PATTERN)
    rna, scna = sheets["rna"], sheets["scna"]
    assert rna.columns[0] == "gene" and list(scna.columns[:2]) == ["gene", "chrom_arm"]
    assert list(rna["gene"]) == list(scna["gene"]) and rna["gene"].is_unique
    rna_ids = {pattern.match(c).group(1) for c in rna.columns[1:]}
    scna_ids = {pattern.match(c).group(1) for c in scna.columns[2:]}
    assert rna_ids < ids and 0.1 <= 1 - len(rna_ids) / len(ids) <= 0.2
    extra = scna_ids - ids
    assert len(extra) == round(SMOKE.extra_scna_fraction * len(ids))
    counts = rna.iloc[:, 1:].to_numpy()
    assert counts.dtype == np.int64 and counts.min() >= 0
    values = scna.iloc[:, 2:].to_numpy()
    assert values.dtype == np.int64 and set(np.unique(values)) <= {-2, -1, 0, 1, 2}


def _arm_mean(scna: pd.DataFrame, arm: str, patients: list[str]) -> float:
    cols = [f"{p}-01A" for p in patients if f"{p}-01A" in scna.columns]
    return float(scna.loc[scna["chrom_arm"] == arm, cols].to_numpy().mean())


def test_scna_arm_events_follow_subtype(sheets) -> None:
    s, scna = sheets["samples"], sheets["scna"]
    codel = list(s.loc[s["who_subtype"] == "IDHmut-codel", "patient_id"])
    wt = list(s.loc[s["who_subtype"] == "IDHwt", "patient_id"])
    assert _arm_mean(scna, "1p", codel) < -0.8 and _arm_mean(scna, "19q", codel) < -0.8
    assert _arm_mean(scna, "7p", wt) > 0.5 and _arm_mean(scna, "10q", wt) < -0.5
    assert abs(_arm_mean(scna, "1p", wt)) < 0.3


def test_planted_rna_module_tracks_risk(smoke_dir: Path, sheets) -> None:
    text = (smoke_dir / "gene_sets.gmt").read_text()
    sets = [line.split("\t") for line in text.splitlines()]
    assert 8 <= len(sets) <= 12 and all(len(s) >= 3 for s in sets)
    module = next(s[2:] for s in sets if s[0] == "DEMO_RISK_MODULE")
    assert len(module) == SMOKE.n_module_genes
    rna = sheets["rna"].set_index("gene")
    log_cpm = np.log1p(rna / rna.sum() * 1e6)
    z = log_cpm.sub(log_cpm.mean(axis=1), axis=0).div(log_cpm.std(axis=1), axis=0)
    score = z.loc[module].mean()
    truth = sheets["truth"].set_index("patient_id")["risk_rna"]
    aligned = truth.loc[[c[:12] for c in score.index]].to_numpy()
    assert np.corrcoef(score.to_numpy(), aligned)[0, 1] > 0.6


def test_oracle_c_index_is_high(smoke_dir: Path) -> None:
    table = oracle_c_index(smoke_dir)
    assert list(table.index) == ["risk", *COMPONENTS]
    assert table.loc["risk", "os"] > 0.7
    assert (table.loc[list(COMPONENTS), "os"] > 0.5).all()
    assert (table.loc[list(COMPONENTS), "os"] < table.loc["risk", "os"] + 0.05).all()


def test_oracle_command_line(smoke_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([str(smoke_dir)])
    out = capsys.readouterr().out
    assert str(smoke_dir) in out and "risk_clinical" in out


def _read_nifti(path: Path) -> tuple[np.ndarray, tuple]:
    img = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(img), (img.GetSpacing(), img.GetOrigin(), img.GetDirection())


def test_same_seed_gives_identical_cohort(smoke_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert make_demo_cohort(again, preset="smoke", seed=0, n_jobs=1) == again / "config.yaml"
    for name in ("samples", "slides", "images", "truth", "rna", "scna"):
        assert (again / f"{name}.tsv").read_text() == (smoke_dir / f"{name}.tsv").read_text()
    assert (again / "gene_sets.gmt").read_text() == (smoke_dir / "gene_sets.gmt").read_text()
    slides = pd.read_csv(smoke_dir / "slides.tsv", sep="\t")
    for rel in slides["path"]:
        if (smoke_dir / rel).read_bytes() == (again / rel).read_bytes():
            continue  # identical files; otherwise the pixels must still agree
        with tifffile.TiffFile(smoke_dir / rel) as a, tifffile.TiffFile(again / rel) as b:
            assert len(a.pages) == len(b.pages)
            for pa, pb in zip(a.pages, b.pages, strict=True):
                assert np.array_equal(pa.asarray(), pb.asarray())
    images = pd.read_csv(smoke_dir / "images.tsv", sep="\t")
    for rel in images["path"]:
        if (smoke_dir / rel).read_bytes() == (again / rel).read_bytes():
            continue
        arr_a, geom_a = _read_nifti(smoke_dir / rel)
        arr_b, geom_b = _read_nifti(again / rel)
        assert geom_a == geom_b and np.array_equal(arr_a, arr_b)


def test_unknown_preset_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown demo preset"):
        make_demo_cohort(tmp_path, preset="huge")

"""The mmsurv command runs stages without Snakemake and fails with one clear message."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from mmsurv.cli import main


def _config_file(raw_config, tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw_config))
    return str(path)


def test_cli_runs_cohort_splits_train_evaluate(raw_config, tmp_path):
    cfg = _config_file(raw_config, tmp_path)
    out = tmp_path / "results"
    assert main(["cohort", "--config", cfg, "--out", str(out / "cohort.tsv")]) == 0
    assert (
        main(["splits", "--config", cfg, "--endpoint", "os", "--out", str(out / "splits/os.tsv")])
        == 0
    )
    fold = out / "models/cox_small/fold0"
    assert (
        main(
            [
                "train",
                "--config",
                cfg,
                "--experiment",
                "cox_small",
                "--cohort",
                str(out / "cohort.tsv"),
                "--splits",
                f"os={out / 'splits/os.tsv'}",
                "--out-dir",
                str(fold),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "evaluate",
                "--config",
                cfg,
                "--experiment",
                "cox_small",
                "--fold-dirs",
                str(fold),
                "--out-dir",
                str(out),
            ]
        )
        == 0
    )
    metrics = pd.read_csv(out / "metrics/cox_small.tsv", sep="\t")
    assert set(metrics["split"]) == {"train", "val", "test"}
    assert (out / "report/figures/cox_small.km.png").is_file()


def test_cli_reports_bad_input_and_writes_nothing(raw_config, tmp_path, cohort_dir, capsys):
    samples = pd.read_csv(cohort_dir / "samples.tsv", sep="\t")
    samples.loc[4, "os_event"] = 3
    samples.to_csv(cohort_dir / "samples.tsv", sep="\t", index=False)
    out = tmp_path / "cohort.tsv"
    code = main(["cohort", "--config", _config_file(raw_config, tmp_path), "--out", str(out)])
    assert code == 1 and not out.exists()
    assert "samples.tsv, line 6: event os_event='3' is not 0 or 1" in capsys.readouterr().err


def test_cli_rna_maps_sample_barcodes_and_log_normalises(raw_config, tmp_path, cohort_dir):
    import numpy as np

    out = tmp_path / "rna.parquet"
    assert main(["rna", "--config", _config_file(raw_config, tmp_path), "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    counts = pd.read_csv(cohort_dir / "rna.tsv", sep="\t", index_col=0)
    assert table.index.name == "patient_id"
    assert list(table.index) == [c.removesuffix("-01A") for c in counts.columns]
    assert list(table.columns) == list(counts.index)
    first = counts.iloc[:, 0]
    expected = np.log2(first / first.sum() * 1e6 + 1)  # log2(CPM + 1) of one sample
    assert np.allclose(table.iloc[0].to_numpy(), expected.to_numpy(), rtol=1e-5)


def test_cli_tile_names_an_unknown_slide(raw_config, tmp_path, capsys):
    cfg = _config_file(raw_config, tmp_path)
    code = main(["tile", "--config", cfg, "--slide", "NOPE", "--out-dir", str(tmp_path)])
    assert code == 1 and "'NOPE' is not in the slides sheet" in capsys.readouterr().err


def test_cli_mri_preprocess_names_the_patient_and_file_or_skips(raw_config, tmp_path, capsys):
    """The hand-made cohort's volumes are not images: the job fails naming patient and file;
    with mri.on_error skip it succeeds and records why."""
    pid = "TCGA-AA-0000"
    raw_config["mri"] = {"sequences": ["t1", "t2"], "reference": ["t1"]}
    cfg = _config_file(raw_config, tmp_path)
    out = tmp_path / "mri"
    code = main(["mri-preprocess", "--config", cfg, "--patient", "NOPE", "--out-dir", str(out)])
    assert code == 1 and "'NOPE' is not in the images sheet" in capsys.readouterr().err
    code = main(["mri-preprocess", "--config", cfg, "--patient", pid, "--out-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and f"patient {pid}" in err and f"{pid}_t1.nii.gz" in err
    assert not (out / "preprocessed" / pid / "preprocess.json").exists()
    raw_config["mri"]["on_error"] = "skip"
    cfg = _config_file(raw_config, tmp_path)
    code = main(["mri-preprocess", "--config", cfg, "--patient", pid, "--out-dir", str(out)])
    record = json.loads((out / "preprocessed" / pid / "preprocess.json").read_text())
    assert code == 0 and record["status"] == "skipped" and f"{pid}_t1.nii.gz" in record["reason"]
    assert (out / "qc" / f"{pid}.png").is_file()
    code = main(["radiomics", "--config", cfg, "--patient", pid, "--out-dir", str(out)])
    assert code == 0 and (out / "radiomics" / f"{pid}.tsv").is_file()


def test_cli_segmenter_gives_a_maskless_patient_its_weak_mask(raw_config, tmp_path, mri_study):
    """mri-preprocess the masked patients, train the weak-label network, then preprocess the
    patient without a mask with it."""
    rows = []
    pids = ["TCGA-AA-0000", "TCGA-AA-0001", "TCGA-AA-0002", "TCGA-AA-0003"]
    for k, pid in enumerate(pids):
        files = mri_study(tmp_path / "studies" / pid, seed=k)
        if pid == pids[-1]:
            files.pop("mask")
        rows += [{"patient_id": pid, "channel": c, "path": p} for c, p in files.items()]
    pd.DataFrame(rows).to_csv(tmp_path / "images.tsv", sep="\t", index=False)
    raw_config["cohort"]["images"] = str(tmp_path / "images.tsv")
    raw_config["mri"] = {
        "crop_size": [16, 16, 16],
        "brain_size": [16, 16, 16],
        "n4": {"enabled": False},
        "weak_labels": {"epochs": 20},
    }
    cfg = _config_file(raw_config, tmp_path)
    out = tmp_path / "mri"
    for pid in pids[:-1]:
        assert (
            main(["mri-preprocess", "--config", cfg, "--patient", pid, "--out-dir", str(out)]) == 0
        )
    assert main(["segmenter", "--config", cfg, "--out-dir", str(out)]) == 0
    assert (out / "weak" / "segmenter.pt").is_file()
    meta = json.loads((out / "weak" / "segmenter.json").read_text())
    assert sorted(meta["train_patients"] + meta["val_patients"]) == pids[:-1]
    args = ["mri-preprocess", "--config", cfg, "--patient", pids[-1], "--out-dir", str(out)]
    assert main([*args, "--segmenter", str(out / "weak" / "segmenter.pt")]) == 0
    record = json.loads((out / "preprocessed" / pids[-1] / "preprocess.json").read_text())
    assert record["mask_source"] == "weak_network"


def test_cli_dti_slices_writes_the_16_slices_or_names_the_missing_map(
    raw_config, tmp_path, mri_study, capsys
):
    """DTI maps on the study's grid -> the 16-slice stack; a missing map fails the patient's
    job naming it; with dti.on_error skip the job succeeds and records why."""
    import numpy as np
    import SimpleITK as sitk

    pid = "TCGA-AA-0000"
    files = mri_study(tmp_path / "study", seed=0)
    mask = sitk.ReadImage(files["mask"])
    tumor = sitk.GetArrayFromImage(mask) > 0
    rows = [{"patient_id": pid, "channel": "mask", "path": files["mask"]}]
    for name, (inside, outside) in {
        "fa": (0.3, 0.5),
        "md": (1.2e-3, 0.8e-3),
        "ad": (1.5e-3, 1.2e-3),
        "rd": (1.0e-3, 0.6e-3),
    }.items():
        image = sitk.GetImageFromArray(np.where(tumor, inside, outside).astype(np.float32))
        image.CopyInformation(mask)
        path = tmp_path / "study" / f"{name}.nii.gz"
        sitk.WriteImage(image, str(path))
        rows.append({"patient_id": pid, "channel": name, "path": str(path)})
    pd.DataFrame(rows).to_csv(tmp_path / "images.tsv", sep="\t", index=False)
    raw_config["cohort"]["images"] = str(tmp_path / "images.tsv")
    raw_config["dti"] = {"slice_size": [24, 24]}
    cfg = _config_file(raw_config, tmp_path)
    out = tmp_path / "dti"
    args = ["dti-slices", "--config", cfg, "--patient", pid, "--out-dir", str(out)]
    assert main(args) == 0
    stack = np.load(out / "slices" / f"{pid}.npy")
    assert stack.shape == (16, 24, 24)
    np.testing.assert_allclose(stack[:4, 12, 12], 0.3, rtol=1e-5)  # FA inside the tumour
    np.testing.assert_allclose(stack[4:8, 12, 12], 1.2, rtol=1e-5)  # MD in 1e-3 mm^2/s
    record = json.loads((out / "slices" / f"{pid}.json").read_text())
    assert record["map_source"] == "given" and record["mask_source"] == "ground_truth"
    assert (out / "qc" / f"{pid}.png").is_file()
    (tmp_path / "study" / "rd.nii.gz").unlink()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"patient {pid}" in err and "rd.nii.gz" in err
    raw_config["dti"]["on_error"] = "skip"
    cfg = _config_file(raw_config, tmp_path)
    assert main(["dti-slices", "--config", cfg, "--patient", pid, "--out-dir", str(out)]) == 0
    record = json.loads((out / "slices" / f"{pid}.json").read_text())
    assert record["status"] == "skipped" and "rd.nii.gz" in record["reason"]


def test_cli_record_writes_the_config_used_and_the_record(raw_config, config, tmp_path):
    cfg = _config_file(raw_config, tmp_path)
    out = tmp_path / "run"
    assert main(["record", "--config", cfg, "--out-dir", str(out)]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text()) == config
    record = json.loads((out / "record.json").read_text())
    assert record["seeds"]["seed"] == config["seed"] and record["git"]["commit"]
    assert record["invocation"]["command"] == f"mmsurv record --config {cfg} --out-dir {out}"

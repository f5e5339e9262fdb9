"""The mmsurv command runs stages without Snakemake and fails with one clear message."""

from __future__ import annotations

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

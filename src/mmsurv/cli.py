"""The ``mmsurv`` command: every stage without Snakemake.

Examples
--------
mmsurv demo --preset smoke --out demo_smoke
mmsurv cohort --config config/config.yaml --out results/cohort/cohort.tsv
mmsurv splits --config config/config.yaml --endpoint os --out results/splits/os.tsv
mmsurv tile --config config/config.yaml --slide SLIDE_ID --out-dir results/wsi
mmsurv extract --config config/config.yaml --slide SLIDE_ID --encoder resnet50 --out-dir results/wsi
mmsurv rna --config config/config.yaml --out results/omics/rna.parquet
mmsurv scna --config config/config.yaml --out results/omics/scna.parquet \\
    --umap results/omics/scna_umap.png --umap-tsv results/omics/scna_umap.tsv
mmsurv mri-preprocess --config config/config.yaml --patient PATIENT_ID --out-dir results/mri
mmsurv segmenter --config config/config.yaml --out-dir results/mri
mmsurv mri-preprocess --config config/config.yaml --patient MASKLESS_ID --out-dir results/mri \
    --segmenter results/mri/weak/segmenter.pt
mmsurv radiomics --config config/config.yaml --patient PATIENT_ID --out-dir results/mri
mmsurv dti-slices --config config/config.yaml --patient PATIENT_ID --out-dir results/dti \
    --mri-dir results/mri
mmsurv signature --config config/config.yaml --experiment dti_dls \
    --predictions results/predictions/dti_dls.tsv --out-dir results/signature/dti_dls \
    --rna results/omics/rna.parquet
mmsurv record --config config/config.yaml --out-dir results/run
mmsurv train --config config/config.yaml --experiment clinical_small_coxph --fold 0 \\
    --cohort results/cohort/cohort.tsv --splits os=results/splits/os.tsv \\
    --out-dir results/models/clinical_small_coxph/fold0
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mmsurv import __version__
from mmsurv._logging import configure_logging

__all__ = ["main"]

log = logging.getLogger("mmsurv")


def _key_values(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {item!r}")
        out[key] = value
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmsurv", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"mmsurv {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument(
            "--config",
            action="append",
            required=True,
            type=Path,
            help="config YAML (repeat: later files override earlier ones)",
        )
        return sp

    d = sub.add_parser("demo", help="write the synthetic demo cohort")
    d.add_argument("--preset", choices=["smoke", "demo"], default="demo")
    d.add_argument("--out", type=Path, required=True, help="output folder")
    d.add_argument("--seed", type=int, default=0)

    c = with_config(sub.add_parser("cohort", help="validate inputs, write cohort.tsv"))
    c.add_argument("--out", type=Path, required=True)

    s = with_config(sub.add_parser("splits", help="patient-level splits of one endpoint"))
    s.add_argument("--endpoint", required=True)
    s.add_argument("--out", type=Path, required=True)

    ti = with_config(sub.add_parser("tile", help="tile one slide (tiles .h5 and QC thumbnail)"))
    ti.add_argument("--slide", required=True, help="slide_id of the slides sheet")
    ti.add_argument(
        "--out-dir",
        type=Path,
        required=True,
        help="writes OUT_DIR/tiles/SLIDE.h5 and OUT_DIR/thumbnails/SLIDE.png",
    )

    x = with_config(sub.add_parser("extract", help="patch features of one tiled slide"))
    x.add_argument("--slide", required=True, help="slide_id of the slides sheet")
    x.add_argument("--encoder", required=True, help="a name of wsi.encoders")
    x.add_argument(
        "--out-dir",
        type=Path,
        required=True,
        help="reads OUT_DIR/tiles/SLIDE.h5, writes OUT_DIR/features/ENCODER/SLIDE.h5",
    )

    r = with_config(sub.add_parser("rna", help="RNA matrix mapped to patients, log-normalised"))
    r.add_argument("--out", type=Path, required=True)

    cn = with_config(
        sub.add_parser("scna", help="SCNA matrix mapped to patients (and its UMAP by subtype)")
    )
    cn.add_argument("--out", type=Path, required=True, help="the cleaned matrix (.parquet)")
    cn.add_argument("--umap", type=Path, help="also draw the UMAP of every sample (PNG)")
    cn.add_argument("--umap-tsv", type=Path, help="the UMAP coordinates (TSV; with --umap)")

    m = with_config(
        sub.add_parser("mri-preprocess", help="preprocess one patient's MRI (SimpleITK)")
    )
    m.add_argument("--patient", required=True, help="patient_id of the images sheet")
    m.add_argument(
        "--out-dir",
        type=Path,
        required=True,
        help="writes OUT_DIR/preprocessed/PATIENT/ and the montage OUT_DIR/qc/PATIENT.png",
    )
    m.add_argument(
        "--segmenter",
        type=Path,
        help="weak-label network (mmsurv segmenter) for a patient without a mask",
    )

    sg = with_config(
        sub.add_parser(
            "segmenter", help="train the weak-label network on the preprocessed masked scans"
        )
    )
    sg.add_argument(
        "--out-dir",
        type=Path,
        required=True,
        help="reads OUT_DIR/preprocessed/*/preprocess.json, writes OUT_DIR/weak/segmenter.pt "
        "and segmenter.json",
    )
    sg.add_argument("--threads", type=int, default=1)

    rad = with_config(
        sub.add_parser("radiomics", help="PyRadiomics features of one preprocessed patient")
    )
    rad.add_argument("--patient", required=True, help="patient_id of the images sheet")
    rad.add_argument(
        "--out-dir",
        type=Path,
        required=True,
        help="reads OUT_DIR/preprocessed/PATIENT/, writes OUT_DIR/radiomics/PATIENT.tsv",
    )

    dt = with_config(
        sub.add_parser("dti-slices", help="one patient's 16-slice DTI input (maps or tensor fit)")
    )
    dt.add_argument("--patient", required=True, help="patient_id of the images sheet")
    dt.add_argument(
        "--out-dir",
        type=Path,
        required=True,
        help="writes OUT_DIR/slices/PATIENT.npy and .json and OUT_DIR/qc/PATIENT.png",
    )
    dt.add_argument(
        "--mri-dir",
        type=Path,
        help="the MRI stage's folder: its weak mask for a patient without a mask row",
    )

    sig = with_config(
        sub.add_parser("signature", help="seed-4 analysis of an experiment's risk (and RNA)")
    )
    sig.add_argument("--experiment", required=True)
    sig.add_argument("--predictions", type=Path, required=True, help="predictions/{exp}.tsv")
    sig.add_argument("--out-dir", type=Path, required=True, help="results/signature/{exp}")
    sig.add_argument(
        "--rna", type=Path, help="omics/rna.parquet: also the radiogenomics (cohort.gene_sets)"
    )

    rec = with_config(
        sub.add_parser("record", help="the config used, package versions, git commit, seeds")
    )
    rec.add_argument(
        "--out-dir", type=Path, required=True, help="writes OUT_DIR/config.yaml and record.json"
    )

    t = with_config(sub.add_parser("train", help="train one (experiment, fold)"))
    t.add_argument("--experiment", required=True)
    t.add_argument("--fold", type=int, default=0)
    t.add_argument("--cohort", type=Path, required=True, help="cohort.tsv")
    t.add_argument("--splits", nargs="+", required=True, metavar="ENDPOINT=PATH")
    t.add_argument("--out-dir", type=Path, required=True)
    t.add_argument("--threads", type=int, default=1)

    e = with_config(sub.add_parser("evaluate", help="metrics and Kaplan-Meier of an experiment"))
    e.add_argument("--experiment", required=True)
    e.add_argument(
        "--fold-dirs",
        nargs="+",
        type=Path,
        required=True,
        help="results/models/{experiment}/fold{k} folders",
    )
    e.add_argument("--out-dir", type=Path, required=True, help="results folder")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmsurv`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return _dispatch(args)
    except Exception as err:  # noqa: BLE001 - one clear line for the user, traceback in -v
        log.debug("traceback", exc_info=True)
        log.error("%s", err)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    from mmsurv import stages

    if args.command == "demo":
        from mmsurv.demo import make_demo_cohort

        path = make_demo_cohort(args.out, preset=args.preset, seed=args.seed)
        log.info("demo cohort written; run it with: snakemake --cores all --configfile %s", path)
        return 0
    from mmsurv.config import load_config

    config = load_config(*args.config)
    if args.command == "cohort":
        stages.run_cohort(config, args.out)
    elif args.command == "splits":
        stages.run_splits(config, args.endpoint, args.out)
    elif args.command in ("tile", "extract"):
        _wsi_command(config, args)
    elif args.command == "rna":
        stages.run_rna(config, args.out)
    elif args.command == "scna":
        if (args.umap is None) != (args.umap_tsv is None):
            raise ValueError("--umap and --umap-tsv go together")
        stages.run_scna(config, args.out)
        if args.umap is not None:
            stages.run_scna_umap(config, args.out, args.umap, args.umap_tsv)
    elif args.command in ("mri-preprocess", "radiomics"):
        _mri_command(config, args)
    elif args.command == "segmenter":
        records = sorted((args.out_dir / "preprocessed").glob("*/preprocess.json"))
        weak = args.out_dir / "weak"
        weak.mkdir(parents=True, exist_ok=True)
        stages.run_mri_segmenter(
            config, records, weak / "segmenter.pt", weak / "segmenter.json", args.threads
        )
    elif args.command == "dti-slices":
        _dti_command(config, args)
    elif args.command == "signature":
        _signature_command(config, args)
    elif args.command == "record":
        from mmsurv.provenance import describe_invocation, write_record

        write_record(
            config,
            Path(__file__).parent,  # the checkout (or installation) of mmsurv
            args.out_dir / "config.yaml",
            args.out_dir / "record.json",
            describe_invocation(["mmsurv", *args.argv], args.config, Path.cwd()),
        )
    elif args.command == "train":
        stages.run_train(
            config,
            args.experiment,
            args.fold,
            args.cohort,
            _key_values(args.splits),
            args.out_dir,
            args.threads,
        )
    elif args.command == "evaluate":
        out = args.out_dir
        pred = out / "predictions" / f"{args.experiment}.tsv"
        surv = out / "predictions" / f"{args.experiment}.survival.parquet"
        stages.run_collect(args.fold_dirs, pred, surv)
        stages.run_evaluate(
            config,
            args.experiment,
            pred,
            surv,
            out / "metrics" / f"{args.experiment}.tsv",
            out / "report" / "figures" / f"{args.experiment}.km.png",
            out / "report" / "figures" / f"{args.experiment}.calibration.png",
            out / "report" / "figures" / f"{args.experiment}.roc.png",
            out / "metrics" / f"{args.experiment}.subgroups.tsv",
        )
    return 0


def _dti_command(config: dict, args: argparse.Namespace) -> None:
    """``mmsurv dti-slices`` for one patient of the configured images sheet."""
    from mmsurv import stages
    from mmsurv.plan import images_table

    rows = images_table(config)
    rows = rows[rows["patient_id"] == args.patient]
    if rows.empty:
        raise KeyError(f"patient {args.patient!r} is not in the images sheet")
    wanted = ("fa", "md", "ad", "rd", "dwi", "bval", "bvec", "mask")
    files = {c: p for c, p in zip(rows["channel"], rows["path"], strict=True) if c in wanted}
    mri = None if args.mri_dir is None else args.mri_dir / "preprocessed" / args.patient
    outputs = {
        "slices": args.out_dir / "slices" / f"{args.patient}.npy",
        "record": args.out_dir / "slices" / f"{args.patient}.json",
        "montage": args.out_dir / "qc" / f"{args.patient}.png",
    }
    stages.run_dti_slices(
        config,
        args.patient,
        files,
        outputs,
        mri_mask=None if mri is None else str(mri / "mask.nii.gz"),
        mri_record=None if mri is None else str(mri / "preprocess.json"),
    )


def _signature_command(config: dict, args: argparse.Namespace) -> None:
    """``mmsurv signature``: the files of the signature and radiogenomics rules."""
    import json

    from mmsurv import stages
    from mmsurv.config import clinical_set

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    tables = ("groups", "risk_groups", "multivariable", "table1", "nri")
    outputs = {k: out / f"{k}.tsv" for k in tables}
    outputs |= {
        "decision": out / "decision_curves.tsv",
        "km": out / "km.png",
        "calibration": out / "calibration.png",
        "decision_plot": out / "decision_curves.png",
        "nomogram": out / "nomogram.png",
        "nomogram_cm": out / "nomogram_clinicomolecular.png",
    }
    numeric = config["clinical"]["numeric"]
    factors = clinical_set(config, config["signature"]["factors"])
    variables = {v: "numeric" if v in numeric else "categorical" for v in factors}
    stages.run_signature(config, args.experiment, args.predictions, variables, outputs)
    if args.rna is not None:
        rg = out / "radiogenomics"
        rg.mkdir(exist_ok=True)
        names = ("deg", "enrichment", "pathway_correlation", "pathway_km")
        files = {k: rg / f"{k}.tsv" for k in names}
        files["correlation"] = files.pop("pathway_correlation")
        files |= {
            "summary": rg / "summary.json",
            "volcano": rg / "volcano.png",
            "pathway_km_plot": rg / "pathway_km.png",
        }
        summary = stages.run_radiogenomics(
            config, args.experiment, outputs["groups"], args.rna, files
        )
        log.info("radiogenomics: %s", json.dumps(summary, default=str))


def _wsi_command(config: dict, args: argparse.Namespace) -> None:
    """``mmsurv tile`` / ``mmsurv extract`` for one slide of the configured slides sheet."""
    from mmsurv import stages
    from mmsurv.plan import slides_table

    slides = slides_table(config).set_index("slide_id")
    if args.slide not in slides.index:
        raise KeyError(
            f"slide {args.slide!r} is not in the slides sheet {config['cohort']['slides']}"
        )
    row = slides.loc[args.slide]
    tiles = args.out_dir / "tiles" / f"{args.slide}.h5"
    if args.command == "tile":
        thumb = args.out_dir / "thumbnails" / f"{args.slide}.png"
        stages.run_tile(config, args.slide, row["path"], row["mpp"], tiles, thumb)
    else:
        out = args.out_dir / "features" / args.encoder / f"{args.slide}.h5"
        stages.run_extract(config, args.encoder, args.slide, row["path"], row["mpp"], tiles, out)


def _mri_command(config: dict, args: argparse.Namespace) -> None:
    """``mmsurv mri-preprocess`` / ``mmsurv radiomics`` for one patient of the images sheet."""
    from mmsurv import stages
    from mmsurv.plan import images_table

    rows = images_table(config)
    rows = rows[rows["patient_id"] == args.patient]
    if rows.empty:
        raise KeyError(
            f"patient {args.patient!r} is not in the images sheet {config['cohort'].get('images')}"
        )
    folder = args.out_dir / "preprocessed" / args.patient
    if args.command == "mri-preprocess":
        wanted = rows[rows["channel"].isin([*config["mri"]["sequences"], "mask"])]
        files = dict(zip(wanted["channel"], wanted["path"], strict=True))
        montage = args.out_dir / "qc" / f"{args.patient}.png"
        stages.run_mri_preprocess(config, args.patient, files, folder, montage, args.segmenter)
    else:
        out = args.out_dir / "radiomics" / f"{args.patient}.tsv"
        stages.run_radiomics_patient(config, args.patient, folder / "preprocess.json", out)


if __name__ == "__main__":
    sys.exit(main())

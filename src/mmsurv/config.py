"""Configuration: JSON-schema validation with defaults, and cross-key checks."""

from __future__ import annotations

import copy
import fcntl
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = [
    "ConfigError",
    "SCHEMA_DIR",
    "load_schema",
    "validate_config",
    "load_config",
    "check_config",
    "clinical_set",
    "experiment_endpoints",
    "COHORT_KEYS",
    "REGISTRY_ENCODERS",
    "with_demo_cohort",
]

#: Top-level keys that describe a cohort (supplied by the demo when no cohort is configured).
COHORT_KEYS = ("cohort", "endpoints", "clinical", "labels")

#: Names of ``mmsurv.wsi.encoders.ENCODERS`` (kept here so that reading the config does not
#: import torch; a test checks that the two agree).
REGISTRY_ENCODERS = ("resnet18", "resnet50")

#: Smallest tumor crop (voxels per axis) the 3D networks take (``mri_nets.MIN_INPUT_SIZE``,
#: kept here so that reading the config does not import torch; a test checks they agree).
MIN_NETWORK_CROP = 29

#: ``workflow/schemas`` of the source tree (mmsurv is installed editable from its repository).
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "workflow" / "schemas"


class ConfigError(ValueError):
    """The configuration is invalid; the message lists every problem."""


def load_schema(name: str) -> dict[str, Any]:
    """Load ``workflow/schemas/{name}.schema.yaml``."""
    with open(SCHEMA_DIR / f"{name}.schema.yaml") as fh:
        return yaml.safe_load(fh)


def _fill_defaults(instance: Any, schema: Mapping[str, Any]) -> None:
    """Insert schema defaults for missing keys, recursively (objects only)."""
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)
            for alt in sub.get("oneOf", []):
                if alt.get("type") == "object":
                    _fill_defaults(instance[key], alt)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra)


def _errors(instance: Any, schema: Mapping[str, Any]) -> Iterator[str]:
    validator = jsonschema.Draft202012Validator(schema)
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in err.path) or "(top level)"
        yield f"{where}: {err.message}"


def demo_folder(config: Mapping[str, Any]) -> Path:
    """Where the demo cohort of ``config`` lives: ``{demo.folder}/{preset}-seed{seed}``."""
    demo = config.get("demo") or {}
    preset = demo.get("preset", "demo")
    seed = int(config.get("seed", 0))
    return Path(demo.get("folder", "resources/demo")) / f"{preset}-seed{seed}"


def with_demo_cohort(config: Mapping[str, Any]) -> dict[str, Any]:
    """Supply the demo cohort when ``config`` names no cohort and ``demo`` is set.

    The demo is written (once, under a file lock) to ``{demo.folder}/{preset}-seed{seed}``
    while the configuration is read, i.e. when Snakemake parses the workflow (also for ``-n``);
    its own ``config.yaml`` provides the keys in ``COHORT_KEYS`` that ``config`` lacks. A
    config that has a ``cohort`` is returned unchanged: real data never gets demo settings
    mixed in.
    """
    cfg = copy.deepcopy(dict(config))
    demo = cfg.get("demo")
    if "cohort" in cfg or not demo:
        return cfg
    preset = demo.get("preset", "demo")
    seed = int(cfg.get("seed", 0))
    folder = demo_folder(cfg)
    demo_config = folder / "config.yaml"  # written last: its presence means complete
    if not demo_config.is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f".{folder.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent workflow parses wait for one writer
            if not demo_config.is_file():
                from mmsurv.demo import make_demo_cohort

                logging.getLogger("mmsurv").warning(
                    "no cohort configured: writing the %s demo cohort to %s", preset, folder
                )
                make_demo_cohort(folder, preset=preset, seed=seed)
    with open(demo_config) as fh:
        supplied = yaml.safe_load(fh)
    for key in COHORT_KEYS:
        if key not in cfg and key in supplied:
            cfg[key] = supplied[key]
    return cfg


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``config`` against the config schema and return a copy with defaults filled.

    Raises
    ------
    ConfigError
        Listing every schema violation and every cross-key problem (see :func:`check_config`).
    """
    cfg = copy.deepcopy(dict(config))
    schema = load_schema("config")
    problems = list(_errors(cfg, schema))
    if not problems:
        _fill_defaults(cfg, schema)
        problems = check_config(cfg)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return cfg


def load_config(*paths: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read YAML config files (later ones override earlier ones, nested keys merged)."""
    cfg: dict[str, Any] = {}
    for path in paths:
        with open(path) as fh:
            _merge(cfg, yaml.safe_load(fh) or {})
    _merge(cfg, dict(overrides or {}))
    return validate_config(with_demo_cohort(cfg))


def _merge(base: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def clinical_set(config: Mapping[str, Any], name: str) -> list[str]:
    """The clinical variables of set ``name`` (``all``: numeric then categorical)."""
    clinical = config["clinical"]
    if name == "all":
        return [*clinical["numeric"], *clinical["categorical"]]
    return list(clinical["sets"][name])


def experiment_endpoints(config: Mapping[str, Any], experiment: str) -> list[str]:
    """Endpoints an experiment is fitted on (its own list, else every configured endpoint)."""
    return list(config["experiments"][experiment].get("endpoints") or config["endpoints"])


def check_config(cfg: Mapping[str, Any]) -> list[str]:
    """Cross-key checks the schema cannot express; returns one message per problem."""
    from mmsurv.models.registry import (
        CLASSIFIER_MODELS,
        DENSENET_MODELS,
        MODALITIES,
        MODELS,
        tunable_parameters,
    )

    problems: list[str] = []
    if "cohort" not in cfg:
        problems.append("cohort: no cohort configured (give cohort.samples, or set demo)")
    clinical = cfg["clinical"]
    declared = [*clinical["numeric"], *clinical["categorical"]]
    for dup in sorted({v for v in declared if declared.count(v) > 1}):
        problems.append(f"clinical: {dup!r} is listed twice")
    for name, enc in cfg["wsi"]["encoders"].items():
        if not enc.get("factory") and name not in REGISTRY_ENCODERS:
            problems.append(
                f"wsi/encoders/{name}: not a registry encoder ({', '.join(REGISTRY_ENCODERS)}); "
                "give a factory (docs/encoders.md)"
            )
    for name, members in clinical["sets"].items():
        if name == "all":
            problems.append("clinical/sets: 'all' is reserved (numeric + categorical)")
        for var in members:
            if var not in declared:
                problems.append(
                    f"clinical/sets/{name}: {var!r} is not a numeric or categorical variable"
                )
    fr = cfg["splits"]["fractions"]
    if abs(fr["train"] + fr["val"] + fr["test"] - 1.0) > 1e-6:
        problems.append(f"splits/fractions: must sum to 1, got {fr}")
    if fr["train"] <= 0:
        problems.append("splits/fractions/train: must be > 0")
    mri = cfg["mri"]
    if mri["subtraction"] and not {"t1", "t1ce"} <= set(mri["sequences"]):
        problems.append(
            f"mri/subtraction: the T1ce - T1 map needs t1 and t1ce in mri.sequences "
            f"({', '.join(mri['sequences'])}); set mri.subtraction: false"
        )
    channels = [*mri["sequences"], *(["t1ce_t1"] if mri["subtraction"] else [])]
    for name in mri["weak_labels"]["channels"] or []:
        if name not in channels:
            problems.append(
                f"mri/weak_labels/channels: {name!r} is not a preprocessed channel "
                f"({', '.join(channels)})"
            )
    problems += _signature_problems(cfg)
    label = cfg["splits"]["stratify_label"]
    if label is not None and label not in cfg["labels"]:
        problems.append(f"splits/stratify_label: {label!r} is not a key of labels")
    for exp, spec in cfg["experiments"].items():
        where = f"experiments/{exp}"
        if spec["model"] not in MODELS:
            problems.append(
                f"{where}/model: unknown model {spec['model']!r} (known: {', '.join(MODELS)})"
            )
        else:
            known = tunable_parameters(spec["model"])
            for param in spec.get("params", {}):
                if param not in known:
                    problems.append(
                        f"{where}/params: {param!r} is not a parameter of {spec['model']} "
                        f"(known: {', '.join(known)})"
                    )
        for modality, selection in spec["inputs"].items():
            if modality not in MODALITIES:
                problems.append(
                    f"{where}/inputs: unknown modality {modality!r} "
                    f"(known: {', '.join(MODALITIES)})"
                )
            elif modality == "wsi" and selection not in cfg["wsi"]["encoders"]:
                problems.append(
                    f"{where}/inputs/wsi: {selection!r} is not an encoder of wsi/encoders "
                    f"(configured: {', '.join(cfg['wsi']['encoders'])})"
                )
            elif (
                modality == "clinical"
                and selection != "all"
                and (selection not in clinical["sets"])
            ):
                problems.append(f"{where}/inputs/clinical: no clinical set {selection!r}")
            elif modality in ("mri", "radiomics"):
                problems += _image_selection(cfg, f"{where}/inputs/{modality}", modality, selection)
            elif modality == "scna" and selection != "genes":
                problems.append(
                    f"{where}/inputs/scna: {selection!r}; the SCNA input is 'genes' (the "
                    "gene-level matrix; its PCA is fitted inside the model)"
                )
            elif modality == "dti" and selection != "slices":
                problems.append(
                    f"{where}/inputs/dti: {selection!r}; the DTI input is 'slices' (the "
                    "16-slice stack of results/dti/slices)"
                )
        if spec["model"] in DENSENET_MODELS and "mri" in spec["inputs"]:
            size = cfg["mri"]["brain_size" if spec["region"] == "brain" else "crop_size"]
            if min(size) < MIN_NETWORK_CROP:
                problems.append(
                    f"{where}: input size {size} is too small for DenseNet-121 (it halves the "
                    f"input five times: at least {MIN_NETWORK_CROP} voxels per axis)"
                )
        if spec["region"] == "brain" and "mri" not in spec["inputs"]:
            problems.append(f"{where}/region: 'brain' needs an mri input")
        classifier = spec["model"] in CLASSIFIER_MODELS
        if classifier and spec["label"] is None:
            problems.append(f"{where}/label: {spec['model']} is a classifier: name a key of labels")
        elif not classifier and spec["label"] is not None:
            problems.append(f"{where}/label: {spec['model']} does not learn a label")
        for ep in spec.get("endpoints") or []:
            if ep not in cfg["endpoints"]:
                problems.append(f"{where}/endpoints: unknown endpoint {ep!r}")
    return problems


def _signature_problems(cfg: Mapping[str, Any]) -> list[str]:
    """Problems of the ``signature`` section (seed 4)."""
    sig = cfg["signature"]
    problems = [
        f"signature/experiments: {e!r} is not an experiment"
        for e in sig["experiments"]
        if e not in cfg["experiments"]
    ]
    if sig["experiments"] and sig["endpoint"] not in cfg["endpoints"]:
        problems.append(f"signature/endpoint: {sig['endpoint']!r} is not an endpoint")
    for e in sig["experiments"]:
        endpoints = cfg["experiments"].get(e, {}).get("endpoints")
        if endpoints and sig["endpoint"] not in endpoints:
            problems.append(
                f"signature/experiments: {e!r} is not fitted on endpoint {sig['endpoint']!r}"
            )
    if sig["factors"] != "all" and sig["factors"] not in cfg["clinical"]["sets"]:
        problems.append(f"signature/factors: no clinical set {sig['factors']!r}")
    lo, hi = sig["cutoff_quantiles"]
    if not lo < hi:
        problems.append(f"signature/cutoff_quantiles: need low < high, got {[lo, hi]}")
    rg = cfg["radiogenomics"]
    if rg["min_set_size"] > rg["max_set_size"]:
        problems.append("radiogenomics: min_set_size is larger than max_set_size")
    return problems


def _image_selection(
    cfg: Mapping[str, Any], where: str, modality: str, selection: Any
) -> list[str]:
    """Problems of an experiment's ``mri`` (channels) or ``radiomics`` (sequences) selection."""
    mri = cfg["mri"]
    problems = []
    if modality == "mri":
        known = [*mri["sequences"], *(["t1ce_t1"] if mri["subtraction"] else [])]
        what = "a preprocessed channel (mri.sequences; t1ce_t1 with mri.subtraction)"
    else:
        known = list(mri["radiomics"]["sequences"])
        what = "a sequence of mri.radiomics.sequences"
    if not isinstance(selection, list) or not selection:
        return [*problems, f"{where}: give a non-empty list of channels, e.g. [t1ce, t2]"]
    return problems + [f"{where}: {n!r} is not {what}" for n in selection if n not in known]

"""The reproducibility record of a run: the configuration used, package versions, the git
commit of the workflow and the seeds (``results/run/config.yaml`` and ``record.json``).

Nothing here fails a run for want of provenance: a folder that is not a git checkout, a
missing ``git`` or a package that is not installed is recorded as such, with the reason.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from mmsurv.io import atomic_path

__all__ = [
    "PACKAGES",
    "INVOCATION_ENV",
    "package_versions",
    "config_digest",
    "git_commit",
    "git_revision",
    "seeds",
    "device_info",
    "describe_invocation",
    "invocation_from_env",
    "build_record",
    "write_record",
]

log = logging.getLogger(__name__)

#: Distributions whose versions the record lists (names as in requirements.txt): the
#: workflow engine and every library a stage calls, then mmsurv itself.
PACKAGES: tuple[str, ...] = (
    "mmsurv",
    "snakemake",
    "snakemake-executor-plugin-slurm",
    "numpy",
    "pandas",
    "scipy",
    "PyYAML",
    "jsonschema",
    "Jinja2",
    "joblib",
    "matplotlib",
    "scikit-learn",
    "scikit-survival",
    "lifelines",
    "tifffile",
    "imagecodecs",
    "openslide-python",
    "openslide-bin",
    "h5py",
    "pyarrow",
    "simpleitk",
    "pyradiomics",
    "dipy",
    "torch",
    "monai",
    "torchsurv",
    "captum",
    "scanpy",
    "anndata",
    "umap-learn",
    "pydeseq2",
    "gseapy",
)

#: Environment variable through which the Snakemake process hands its command line to the
#: record job (a rule parameter would make every new command line a rerun trigger).
INVOCATION_ENV = "MMSURV_SNAKEMAKE_INVOCATION"

#: Most changed paths of a dirty checkout listed in the record.
_MAX_CHANGES = 50
_GIT_TIMEOUT_S = 10.0


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution, ``"not installed"`` for a missing one.

    Parameters
    ----------
    names
        Distribution names (as pip knows them, e.g. ``scikit-survival``).

    Returns
    -------
    Name -> version string, in the order given.
    """
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def config_digest(config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``config`` as sorted JSON: equal for equal configurations, whatever
    their key order."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "--no-optional-locks", "-C", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=_GIT_TIMEOUT_S,
        check=False,
    )


def git_commit(folder: str | Path, untracked: bool = True) -> dict[str, Any]:
    """The git commit a folder is checked out at, and whether it has uncommitted changes.

    Runs ``git -C folder rev-parse HEAD`` and ``git -C folder status --porcelain``; never
    raises.

    Parameters
    ----------
    folder
        A folder inside the checkout (the workflow's base directory).
    untracked
        Also count untracked files (``untracked``); False skips that scan (parse time).

    Returns
    -------
    ``commit`` (40 hex digits), ``short`` (12), ``dirty`` (True when a tracked file differs
    from the commit), ``changes`` (``git status --porcelain`` lines of those files, at most
    50) and, with ``untracked``, the number of untracked paths; or ``commit: "unknown"`` and
    a ``reason`` when the folder is not a git checkout or git cannot be run.
    """
    folder = Path(folder)
    try:
        head = _git(folder, "rev-parse", "HEAD")
        if head.returncode != 0:
            why = head.stderr.strip().splitlines()
            return {"commit": "unknown", "reason": why[-1] if why else "git rev-parse failed"}
        flag = "--untracked-files=normal" if untracked else "--untracked-files=no"
        status = _git(folder, "status", "--porcelain", flag)
    except FileNotFoundError:
        return {"commit": "unknown", "reason": "git is not installed"}
    except (OSError, subprocess.SubprocessError) as err:
        return {"commit": "unknown", "reason": f"git failed: {err}"}
    commit = head.stdout.strip()
    if status.returncode != 0:
        return {
            "commit": commit,
            "short": commit[:12],
            "dirty": "unknown",
            "reason": status.stderr.strip() or "git status failed",
        }
    lines = [line for line in status.stdout.splitlines() if line.strip()]
    changes = [line for line in lines if not line.startswith("??")]
    out: dict[str, Any] = {
        "commit": commit,
        "short": commit[:12],
        "dirty": bool(changes),
        "changes": changes[:_MAX_CHANGES],
    }
    if untracked:
        out["untracked"] = len(lines) - len(changes)
    return out


def git_revision(folder: str | Path) -> str:
    """``COMMIT``, ``COMMIT-dirty`` or ``unknown``: the short form of :func:`git_commit`
    (tracked files only), cheap enough to compute when the workflow is parsed."""
    info = git_commit(folder, untracked=False)
    if info["commit"] == "unknown":
        return "unknown"
    return info["commit"] + ("-dirty" if info.get("dirty") is True else "")


def _seed_keys(value: Any, path: str = "") -> dict[str, Any]:
    """Every key named ``seed`` or ending in ``_seed`` below the top level (dotted path)."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if path and (key == "seed" or str(key).endswith("_seed")):
                out[where] = item
            out |= _seed_keys(item, where)
    return out


def _demo_cohort_used(config: Mapping[str, Any]) -> bool:
    """Whether the cohort is the demo's (written by :func:`mmsurv.config.with_demo_cohort`
    to ``{demo.folder}/{preset}-seed{seed}``)."""
    from mmsurv.config import demo_folder

    samples = config.get("cohort", {}).get("samples")
    if not config.get("demo") or not samples:
        return False
    return Path(samples).resolve().parent == demo_folder(config).resolve()


def seeds(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every seed a run with ``config`` uses.

    The top-level ``seed`` drives the splits, tile sampling, random encoder initialisation,
    bootstrap resampling, the UMAP and the weak-label network; a training job of fold ``k``
    uses ``seed + k``; the demo cohort (when it is the cohort) was generated with ``seed``.

    Returns
    -------
    ``seed``, ``splits``, ``training`` (``fold{k}`` -> seed), ``demo_cohort`` (only when the
    demo cohort is used) and any other key of the config named ``seed`` or ``*_seed`` under
    its dotted path.
    """
    from mmsurv.plan import fold_ids

    seed = int(config.get("seed", 0))
    out: dict[str, Any] = {"seed": seed, "splits": seed}
    if "splits" in config:
        out["training"] = {f"fold{k}": seed + k for k in fold_ids(config)}
    if _demo_cohort_used(config):
        out["demo_cohort"] = seed
    out |= _seed_keys(config)
    return out


def device_info(requested: str) -> dict[str, Any]:
    """The configured ``device`` and what torch sees on this machine (if torch imports).

    Returns
    -------
    ``requested``, ``torch`` (version or ``"not installed"``) and, with torch,
    ``cuda_available``, ``cuda_version`` (of the torch build; None for CPU builds) and
    ``cuda_devices`` (names of the visible GPUs).
    """
    out: dict[str, Any] = {"requested": requested}
    try:
        import torch
    except ImportError:
        out["torch"] = "not installed"
        return out
    out["torch"] = torch.__version__
    out["cuda_version"] = torch.version.cuda
    available = bool(torch.cuda.is_available())
    out["cuda_available"] = available
    out["cuda_devices"] = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if available
        else []
    )
    return out


def describe_invocation(
    argv: Iterable[str], configfiles: Iterable[str | Path], workdir: str | Path
) -> dict[str, Any]:
    """How the run was started: ``command`` (the Snakemake or mmsurv command line, its
    ``sys.argv`` joined), ``configfiles`` and the working directory ``workdir``."""
    return {
        "command": " ".join(str(a) for a in argv),
        "configfiles": [str(f) for f in configfiles],
        "workdir": str(workdir),
    }


def invocation_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, Any] | None:
    """The :func:`describe_invocation` the Snakemake process left in ``INVOCATION_ENV``, or None."""
    text = environ.get(INVOCATION_ENV)
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        log.warning("%s is not JSON; the command line is left out of the record", INVOCATION_ENV)
        return None
    return value if isinstance(value, dict) else None


def build_record(
    config: Mapping[str, Any],
    workflow_dir: str | Path,
    invocation: Mapping[str, Any] | None = None,
    config_path: str | Path | None = None,
) -> dict[str, Any]:
    """The record of a run (see :func:`write_record`) as a JSON-ready dict.

    Keys: ``created`` (UTC, ISO 8601), ``mmsurv``, ``python``, ``python_executable``,
    ``platform``, ``hostname``, ``workdir``, ``config`` (``config_path``), ``config_sha256``
    (:func:`config_digest`), ``git``
    (:func:`git_commit` of ``workflow_dir``), ``seeds``, ``device`` (:func:`device_info`;
    what the machine that wrote the record sees), ``invocation`` (:func:`describe_invocation`,
    only when given) and ``packages`` (:func:`package_versions` of :data:`PACKAGES` in this
    Python environment).
    """
    import mmsurv

    record: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "mmsurv": mmsurv.__version__,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "hostname": platform.node(),
        "workdir": os.getcwd(),
        "config": None if config_path is None else str(config_path),
        "config_sha256": config_digest(config),
        "git": git_commit(workflow_dir),
        "seeds": seeds(config),
        "device": device_info(str(config.get("device", "auto"))),
    }
    if invocation:
        record["invocation"] = dict(invocation)
    record["packages"] = package_versions()
    return record


def _plain(value: Any) -> Any:
    """``value`` as plain YAML/JSON types (tuples become lists, paths strings)."""
    return json.loads(json.dumps(value, default=str))


def write_record(
    config: Mapping[str, Any],
    workflow_dir: str | Path,
    out_config: str | Path,
    out_json: str | Path,
    invocation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the configuration a run used (YAML) and its record (JSON), atomically.

    Parameters
    ----------
    config
        The configuration as the workflow resolved it: validated, defaults filled, the demo
        cohort's keys supplied (Snakemake's ``config``). ``out_config`` can be given back to
        ``snakemake --configfile`` to repeat the run.
    workflow_dir
        A folder of the workflow's checkout (its git commit is recorded).
    invocation
        :func:`describe_invocation` of the Snakemake (or mmsurv) process, when known.

    Returns
    -------
    The record written to ``out_json`` (:func:`build_record`).
    """
    plain = _plain(dict(config))
    header = (
        "# The configuration this run used: validated, defaults filled, the demo cohort's keys\n"
        "# supplied. Repeat the run with: snakemake --configfile THIS_FILE\n"
    )
    with atomic_path(out_config) as tmp:
        tmp.write_text(header + yaml.safe_dump(plain, sort_keys=False))
    record = build_record(config, workflow_dir, invocation, config_path=out_config)
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    git = record["git"]
    log.info(
        "run record: git %s%s, seed %s, %d packages; config in %s",
        git.get("short", git["commit"]),
        " (uncommitted changes)" if git.get("dirty") is True else "",
        record["seeds"]["seed"],
        len(record["packages"]),
        out_config,
    )
    return record

"""A throwaway one-node SLURM cluster on loopback, for the tests and benchmarks of the SLURM
profile (``workflow/profiles/slurm``); not used by the workflow itself.

It runs Debian's ``munged``, ``slurmctld`` and ``slurmd`` (packages ``munge slurmctld slurmd
slurm-client``) as root, with every file of its own in one folder: a private munge socket,
``slurm.conf`` (``SLURM_CONF`` points the clients at it), state, spool, logs and pid files,
and free TCP ports, so that it never touches a cluster the machine may already belong to. The
settings follow ``../shared/notes/slurm.md``: no accounting (``accounting_storage/none``: poll
with ``squeue``), ``proctrack/linuxproc``, ``task/none``, ``select/cons_tres`` with
``DefMemPerCPU`` (else one job takes the whole node) and a long ``MinJobAge`` (finished jobs
stay visible to ``squeue``). :meth:`LoopbackSlurm.stop` stops exactly the daemons it started,
by the PIDs they wrote.

One system path is used: inside a job, snakemake-executor-plugin-slurm-jobstep calls ``srun``
with every ``SLURM_*`` variable removed, ``SLURM_CONF`` included, so ``srun`` reads the default
``/etc/slurm/slurm.conf``. The cluster writes its configuration there only when that file does
not exist (and removes it again on stop); a machine with its own SLURM configuration is left
alone and :func:`unavailable_reason` says so. One loopback cluster at a time per machine.

Usage::

    with LoopbackSlurm(folder) as cluster:
        subprocess.run([...], env=cluster.env)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

__all__ = ["BINARIES", "SYSTEM_CONF", "unavailable_reason", "is_running", "LoopbackSlurm"]

#: Programs the cluster needs.
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo")
_MUNGE_KEY = Path("/etc/munge/munge.key")
#: Where srun inside a job looks for the configuration (see the module docstring).
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
#: First line of every configuration this module writes (a stale one may be replaced).
_MARK = "# written by mmsurv.slurm_loopback: a throwaway test cluster"


def unavailable_reason() -> str | None:
    """Why a loopback cluster cannot start here (None when it can)."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root (slurmd runs the jobs as root)"
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        return (
            f"SLURM/munge not installed (missing {', '.join(missing)}; Debian: apt-get install "
            "slurmctld slurmd slurm-client munge)"
        )
    if not _MUNGE_KEY.is_file():
        return f"no munge key at {_MUNGE_KEY}"
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.read_text().startswith(_MARK):
        return f"this machine has its own {SYSTEM_CONF}; a test cluster would shadow it"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed"
    return None


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (all held open while they are chosen)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


class LoopbackSlurm:
    """One SLURM node on 127.0.0.1 with ``cpus`` CPUs and ``memory_mb`` of memory.

    Parameters
    ----------
    folder
        Where everything of the cluster lives (created; must allow others to traverse it, as
        munged refuses a socket folder that is not world-executable).
    cpus, memory_mb
        What the node offers to jobs.
    partition
        Name of its one partition (the profile's default ``slurm_partition``).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        cpus: int = 2,
        memory_mb: int = 8000,
        partition: str = "main",
    ) -> None:
        self.folder = Path(folder).resolve()
        self.cpus, self.memory_mb, self.partition = int(cpus), int(memory_mb), partition
        self.conf = self.folder / "slurm.conf"
        self.pid_files = {
            "munged": self.folder / "munge" / "munged.pid",
            "slurmctld": self.folder / "slurmctld.pid",
            "slurmd": self.folder / "slurmd.pid",
        }
        self.pids: dict[str, int] = {}
        self._wrote_system_conf = False
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    # -- set-up --------------------------------------------------------------------------

    def _write_conf(self) -> None:
        host = socket.gethostname().split(".")[0]
        ctld_port, slurmd_port = _free_ports(2)
        f = self.folder
        lines = [
            _MARK,
            "ClusterName=mmsurv-loopback",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={f / 'munge' / 'munge.sock'}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={f / 'state'}",
            f"SlurmdSpoolDir={f / 'spool'}",
            f"SlurmctldPidFile={self.pid_files['slurmctld']}",
            f"SlurmdPidFile={self.pid_files['slurmd']}",
            f"SlurmctldLogFile={f / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={f / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "DefMemPerCPU=1000",
            "MinJobAge=600",
            "ReturnToService=2",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} "
            "State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _read_pid(self, name: str, timeout_s: float = 10.0) -> int:
        path = self.pid_files[name]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = path.read_text().strip() if path.is_file() else ""
            if text.isdigit():
                return int(text)
            time.sleep(0.1)
        raise RuntimeError(f"{name} wrote no pid file {path}; see {self.folder / 'log'}")

    def start(self, timeout_s: float = 30.0) -> LoopbackSlurm:
        """Start munged, slurmctld and slurmd; return when the node is idle."""
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(f"cannot start a loopback SLURM cluster: {reason}")
        for sub in ("munge", "state", "spool", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        munge_dir = self.folder / "munge"
        shutil.chown(munge_dir, "munge", "munge")
        munge_dir.chmod(0o755)
        self._write_conf()
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.conf, SYSTEM_CONF)
        self._wrote_system_conf = True
        try:
            subprocess.run(
                [
                    "runuser", "-u", "munge", "--", "munged",
                    f"--socket={munge_dir / 'munge.sock'}",
                    f"--pid-file={self.pid_files['munged']}",
                    f"--log-file={munge_dir / 'munged.log'}",
                    f"--seed-file={munge_dir / 'munged.seed'}",
                ],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            self.pids["munged"] = self._read_pid("munged")
            subprocess.run(
                ["slurmctld", "-f", str(self.conf)], check=True, capture_output=True, text=True
            )
            self.pids["slurmctld"] = self._read_pid("slurmctld")
            subprocess.run(
                ["slurmd", "-f", str(self.conf)],
                check=True, capture_output=True, text=True, env=self.env,
            )  # fmt: skip
            self.pids["slurmd"] = self._read_pid("slurmd")
            self._wait_idle(timeout_s)
        except (subprocess.CalledProcessError, RuntimeError) as err:
            detail = getattr(err, "stderr", "") or ""
            self.stop()
            raise RuntimeError(f"loopback SLURM did not start: {err} {detail}".strip()) from err
        except BaseException:  # interrupted or any other failure: leave nothing behind
            self.stop()
            raise
        return self

    def _wait_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            res = subprocess.run(
                ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=self.env
            )
            state = res.stdout.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"the node did not become idle in {timeout_s:g} s (state {state!r})")

    # -- use -----------------------------------------------------------------------------

    def jobs(self) -> dict[str, dict[str, str]]:
        """Job id -> ``state``, ``name``, ``time_limit`` (SLURM's text, e.g. ``1:30:00``),
        ``min_memory`` (e.g. ``4000M``) and ``cpus`` of every job ``squeue`` still lists
        (finished ones for ``MinJobAge``)."""
        keys = ("state", "name", "time_limit", "min_memory", "cpus")
        res = subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%i|%T|%j|%l|%m|%C"],
            capture_output=True, text=True, env=self.env, check=True,
        )  # fmt: skip
        out = {}
        for line in res.stdout.splitlines():
            if line.strip():
                job_id, *values = line.split("|")
                out[job_id] = dict(zip(keys, values, strict=True))
        return out

    # -- tear-down -----------------------------------------------------------------------

    def _cancel_jobs(self, timeout_s: float) -> None:
        """scancel every job of the cluster and wait until squeue lists none running (a job's
        processes outlive slurmd)."""
        if "slurmctld" not in self.pids:
            return
        subprocess.run(["scancel", "--full", "-u", "root"], env=self.env, capture_output=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            res = subprocess.run(
                ["squeue", "-h", "-t", "PENDING,RUNNING,COMPLETING", "-o", "%i"],
                capture_output=True, text=True, env=self.env,
            )  # fmt: skip
            if res.returncode != 0 or not res.stdout.strip():
                return
            time.sleep(0.5)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Cancel the cluster's jobs, SIGTERM exactly the daemons this object started
        (slurmd, slurmctld, munged: the PIDs it recorded, or that their pid files name when a
        start was cut short), SIGKILL any that outlive ``timeout_s``, and remove the system
        ``slurm.conf`` when it is still this cluster's."""
        self._cancel_jobs(timeout_s)
        for name, path in self.pid_files.items():
            text = path.read_text().strip() if path.is_file() else ""
            if name not in self.pids and text.isdigit():
                self.pids[name] = int(text)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.pop(name, None)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and is_running(pid):
                time.sleep(0.1)
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
        if self._wrote_system_conf:
            # another loopback cluster may have replaced it since: leave that one's alone
            if SYSTEM_CONF.is_file() and SYSTEM_CONF.read_text() == self.conf.read_text():
                SYSTEM_CONF.unlink()
            self._wrote_system_conf = False

    def __enter__(self) -> LoopbackSlurm:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def is_running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie of ours counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return status != "Z"

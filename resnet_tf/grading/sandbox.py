"""Where and how a student's kernel runs: limits, another user, a bubblewrap sandbox.

Every grading kernel is started with

- **resource limits** (``setrlimit`` before the kernel starts): address space, CPU
  seconds, processes, file size and open files, so a memory, fork or disk bomb fails
  inside the kernel instead of hurting the machine;
- **another user** when the grader runs as root and ``nobody`` can run the grader's
  Python: the kernel drops to ``nobody``, so it cannot write the grader's files, the
  submissions or the installed package, and the process limit applies to it (Linux does
  not enforce it for root). When it stays root inside bubblewrap, it loses every
  capability (``--cap-drop ALL``), so the read-only mounts hold;
- **a pids control group** where the machine lets the grader make one: a hard cap on
  the kernel's processes and threads whatever its user, and a list of every process it
  started, all of which are killed when the submission is done;
- **bubblewrap** (``bwrap``, Debian package ``bubblewrap``) when it works here: the whole
  file system is mounted read-only, the grader's temporary folders, the output folder,
  the submissions and the key file are hidden, only the submission's own work folder (and
  the folder of its kernel's sockets) is writable, ``/proc`` shows only the kernel's own
  processes (a new PID namespace, so nothing outlives the sandbox), and the network is a
  new, empty namespace.

What cannot be had on a machine is reported by :func:`probe` as a note, which the run
summary and ``grading.json`` show; grading goes on with what is available.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

NOBODY = "nobody"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one grading kernel (``None``: leave that limit as it is)."""

    memory_mb: int | None = 6144  # address space; TensorFlow alone maps about 3 GB
    cpu_seconds: int | None = None  # default: set from the notebook time limit
    processes: int | None = 512  # processes and threads of the kernel's user, per job
    file_size_mb: int | None = 1024
    open_files: int | None = 1024


@dataclass
class Sandbox:
    """What the machine allows; filled in by :func:`probe`."""

    bwrap: str | None = None
    network: bool = False  # True: the kernel gets an empty network namespace
    uid: int | None = None  # the user the kernel runs as (None: the grader's own)
    gid: int | None = None
    cap_drop: bool = False  # bubblewrap drops every capability (the kernel stays root)
    cgroup_parent: str | None = None  # where per-kernel pids control groups are made
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the summary: the protections in force."""
        parts = ["resource limits"]
        if self.cgroup_parent:
            parts.append("a pids control group")
        if self.uid is not None:
            parts.append(f"user {NOBODY}")
        elif self.cap_drop:
            parts.append("no capabilities")
        if self.bwrap:
            parts.append("bubblewrap (read-only file system, own PID namespace"
                         + (", no network)" if self.network else ")"))
        return ", ".join(parts)


def _nobody() -> tuple[int, int] | None:
    """(uid, gid) of the ``nobody`` user, or None."""
    try:
        import pwd

        entry = pwd.getpwnam(NOBODY)
    except (ImportError, KeyError):
        return None
    return entry.pw_uid, entry.pw_gid


def drop_privileges(uid: int | None, gid: int | None) -> None:
    """Become ``uid``/``gid`` (in a child, before exec); nothing when ``uid`` is None."""
    if uid is None:
        return
    os.setgroups([])
    os.setgid(gid if gid is not None else uid)
    os.setuid(uid)


def _try(command: Sequence[str], uid: int | None, gid: int | None) -> tuple[bool, str]:
    """Run ``command`` briefly (as ``uid``); (succeeded, first line of its error output)."""
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=30,
            preexec_fn=(lambda: drop_privileges(uid, gid)) if uid is not None else None,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return False, str(error)
    message = (done.stderr or done.stdout).strip().splitlines()
    return done.returncode == 0, message[0] if message else f"exit code {done.returncode}"


def bwrap_base(bwrap: str, network: bool, cap_drop: bool = False) -> list[str]:
    """The bubblewrap options every grading kernel gets (before the per-kernel binds)."""
    command = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
               "--tmpfs", "/tmp", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--die-with-parent", "--new-session"]
    if network:
        command.append("--unshare-net")
    if cap_drop:
        command += ["--cap-drop", "ALL"]
    return command


def probe(use_bwrap: bool = True) -> Sandbox:
    """Find out which protections work on this machine (see the module docstring)."""
    sandbox = Sandbox()
    if os.name != "posix":
        sandbox.notes.append("not a POSIX system: no resource limits, no sandbox")
        return sandbox
    sandbox.cgroup_parent = _cgroup_parent()
    if sandbox.cgroup_parent is None:
        sandbox.notes.append("no pids control group can be made here: processes are "
                             "limited by the process rlimit only"
                             + (" (which does not bind root)" if os.geteuid() == 0 else ""))
    root = os.geteuid() == 0
    if root:
        ids = _nobody()
        runs = ids is not None and _try(
            [sys.executable, "-c", "import ipykernel, resnet_tf"], *ids)[0]
        if runs:
            sandbox.uid, sandbox.gid = ids
        else:
            sandbox.notes.append(f"the grader's Python cannot be run by '{NOBODY}' (e.g. it "
                                 "is installed under /root): kernels run as root")
    if not use_bwrap:
        sandbox.notes.append("bubblewrap switched off (--no-sandbox): kernels can read "
                             "and write whatever their user may")
        return sandbox
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        sandbox.notes.append("bubblewrap (bwrap) is not installed: kernels see the whole "
                             "file system and the network (install the 'bubblewrap' "
                             "package)")
        return sandbox
    cap_drop = root and sandbox.uid is None
    message = ""
    for network in (True, False):
        ok, message = _try([*bwrap_base(bwrap, network, cap_drop), "true"],
                           sandbox.uid, sandbox.gid)
        if ok:
            sandbox.bwrap, sandbox.network, sandbox.cap_drop = bwrap, network, cap_drop
            if not network:
                sandbox.notes.append("bubblewrap cannot make a network namespace here: "
                                     "kernels keep the network")
            return sandbox
    sandbox.notes.append(f"bubblewrap does not run here ({message}): kernels see the "
                         "whole file system and the network")
    return sandbox


def _cgroup_parent() -> str | None:
    """A folder in which the grader may make pids control groups (v1 or v2), or None."""
    candidates = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if "pids" in controllers.split(","):
            candidates.append(Path("/sys/fs/cgroup/pids") / path.lstrip("/"))
        elif number == "0" and controllers == "":
            candidates.append(Path("/sys/fs/cgroup") / path.lstrip("/"))
    for folder in candidates:
        test = folder / f"resnet-tf-probe-{os.getpid()}"
        try:
            test.mkdir()
        except OSError:
            continue
        try:
            if (test / "pids.max").exists():
                return str(folder)
        finally:
            try:
                test.rmdir()
            except OSError:
                pass
    return None


class PidsGroup:
    """A pids control group for one kernel: caps its tasks, finds and kills them all."""

    def __init__(self, parent: str, limit: int | None) -> None:
        import secrets

        self.path = Path(parent) / f"resnet-tf-kernel-{secrets.token_hex(6)}"
        self.path.mkdir()
        if limit:
            (self.path / "pids.max").write_text(str(int(limit)))
        self.procs = str(self.path / "cgroup.procs")

    def enter(self) -> None:
        """Move the calling process into the group (call in the child, before exec)."""
        fd = os.open(self.procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    def pids(self) -> list[int]:
        """The processes in the group now."""
        try:
            return [int(x) for x in Path(self.procs).read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self, rounds: int = 50) -> bool:
        """SIGKILL every process in the group until it is empty; True when it is."""
        import signal
        import time

        for _ in range(rounds):
            pids = self.pids()
            if not pids:
                return True
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)
        return not self.pids()

    def remove(self) -> None:
        """Kill what is left and delete the group (never raises)."""
        try:
            self.kill_all()
            self.path.rmdir()
        except OSError:
            pass


def wrap(sandbox: Sandbox, argv: list[str], workdir: Path, private: Path,
         hidden: Sequence[Path], env: dict[str, str],
         readable: Sequence[Path] = ()) -> list[str]:
    """The command that starts ``argv`` inside the sandbox.

    ``workdir`` and ``private`` (the kernel's socket folder) are the only writable
    places; every path in ``hidden`` is covered by an empty folder (or, for a file, by
    ``/dev/null``) before those two are bound back in. A folder of ``readable`` (the
    grader's own package) that a cover would hide, e.g. one under ``/tmp``, is bound
    back read-only, so the kernel imports the grader's package and not another
    installed copy; never one that holds a hidden path.
    """
    if not sandbox.bwrap:
        return list(argv)
    command = bwrap_base(sandbox.bwrap, sandbox.network, sandbox.cap_drop)
    covered: list[Path] = [Path("/tmp")]  # already an empty tmpfs in the sandbox
    for path in sorted(Path(os.path.abspath(p)) for p in hidden):
        if any(path == c or c in path.parents for c in covered):
            continue
        if path.is_dir():
            covered.append(path)
            command += ["--tmpfs", str(path)]
        elif path.exists():
            command += ["--ro-bind", "/dev/null", str(path)]
    secret = [Path(os.path.abspath(p)) for p in hidden]
    for path in (Path(os.path.abspath(p)) for p in readable):
        under_cover = any(path == c or c in path.parents for c in covered)
        holds_secret = any(path == h or path in h.parents for h in secret)
        if under_cover and not holds_secret and path.is_dir() and path != Path("/tmp"):
            command += ["--ro-bind", str(path), str(path)]
    for path in (workdir, private):
        command += ["--bind", str(path), str(path)]
    command += ["--chdir", str(workdir), "--clearenv"]
    for name, value in sorted(env.items()):
        command += ["--setenv", name, value]
    return [*command, "--", *argv]


def preexec(limits: Limits, sandbox: Sandbox, jobs: int = 1,
            group: PidsGroup | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` for the kernel: join ``group``, set the limits, drop to its user."""
    import resource

    mb = 2**20
    settings: list[tuple[int, int]] = []
    if limits.memory_mb:
        settings.append((resource.RLIMIT_AS, limits.memory_mb * mb))
    if limits.cpu_seconds:
        settings.append((resource.RLIMIT_CPU, int(limits.cpu_seconds)))
    if limits.file_size_mb:
        settings.append((resource.RLIMIT_FSIZE, limits.file_size_mb * mb))
    if limits.open_files:
        settings.append((resource.RLIMIT_NOFILE, int(limits.open_files)))
    if limits.processes and hasattr(resource, "RLIMIT_NPROC"):
        # the limit counts every process and thread of the kernel's user
        base = 0 if sandbox.uid is not None else _processes_of(os.getuid())
        settings.append((resource.RLIMIT_NPROC, base + limits.processes * max(1, jobs)))
    uid, gid = sandbox.uid, sandbox.gid

    def apply() -> None:
        if group is not None:
            group.enter()
        for which, value in settings:
            soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            try:
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError):
                pass
        drop_privileges(uid, gid)

    return apply


def _processes_of(uid: int) -> int:
    """How many tasks (processes and threads) ``uid`` runs now (Linux; 0 elsewhere)."""
    count = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid == uid:
                count += len(os.listdir(f"/proc/{entry}/task"))
        except OSError:
            continue
    return count


def give(path: Path, sandbox: Sandbox) -> None:
    """Make ``path`` (a folder, and what is in it) belong to the kernel's user."""
    if sandbox.uid is None:
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, d) for d in dirs),
                     *(os.path.join(root, f) for f in files)]:
            os.chown(name, sandbox.uid, sandbox.gid if sandbox.gid is not None else -1,
                     follow_symlinks=False)


def python_argv() -> list[str]:
    """The kernel: this Python, with ipykernel (no input history is kept)."""
    return [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
            "--HistoryManager.enabled=False"]


def prepare_shared(folder: Path) -> Path | None:
    """Build, once per run, the caches every kernel starts from: Matplotlib's font list.

    Each kernel gets its own copy in its working folder, so none of them can change
    what another reads. Returns the folder, or None when the cache could not be built
    (kernels then build their own, a little slower).
    """
    mpl = folder / "matplotlib"
    mpl.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"],
                       env={**os.environ, "MPLCONFIGDIR": str(mpl)}, timeout=120,
                       capture_output=True, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return folder

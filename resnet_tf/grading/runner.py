"""Running one notebook in a fresh kernel and collecting what its ``check`` calls logged.

The kernel is the grader's own Python (``sys.executable`` with ipykernel), described by a
kernelspec written to a temporary folder, so submissions are graded with exactly the
packages the grader sees, whatever kernel the notebook's metadata names. The package
folder that holds the grader's ``resnet_tf`` is put first on the kernel's ``PYTHONPATH``.

Every cell runs, errors or not (``allow_errors``): a cell that raises is recorded and
the next one runs. A cell that runs longer than ``cell_timeout`` seconds is interrupted
and recorded as timed out, and the next cell runs. The whole notebook has a wall-clock
limit too (``notebook_timeout``); when it is reached, or when the kernel dies, the
kernel is shut down and whatever the checks logged so far is kept.

Each ``check(...)`` call appends one JSON line to the file named by the environment
variable :data:`GRADE_LOG_ENV`; those lines are the raw material of the grade.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

GRADE_LOG_ENV = "RESNET_TF_GRADE_LOG"
KERNEL_NAME = "resnet-tf-grader"
TIMEOUT_ENAME = "CellTimeout"
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1"}


@dataclass
class CellError:
    """A code cell that ended in an error: its position (0-based), name and message."""

    index: int
    ename: str
    evalue: str

    @property
    def timed_out(self) -> bool:
        """True when the cell was interrupted for running too long."""
        return self.ename == TIMEOUT_ENAME


@dataclass
class Execution:
    """What running a notebook produced.

    ``outcome`` is ``"completed"`` (every cell was sent to the kernel), ``"timeout"``
    (the notebook's wall-clock limit stopped it), ``"kernel_died"`` or
    ``"kernel_failed"`` (the kernel could not be started or talked to); ``message``
    explains anything but ``"completed"``.
    """

    outcome: str
    records: list[dict[str, Any]] = field(default_factory=list)
    bad_log_lines: int = 0
    cell_errors: list[CellError] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0
    notebook: Any = None
    cells_sent: int = 0

    @property
    def failed_to_start(self) -> bool:
        """True when the kernel died or failed before any cell was sent to it.

        Nothing of the submission ran, so the failure is the machine's, not the
        student's (e.g. a port taken by another process), and a retry is in order.
        """
        return self.outcome in ("kernel_died", "kernel_failed") and self.cells_sent == 0


def write_kernelspec(folder: str | os.PathLike) -> Path:
    """Write a kernelspec for ``sys.executable`` under ``folder``; return the kernels folder.

    The spec is ``<folder>/kernels/resnet-tf-grader/kernel.json``.
    """
    kernels = Path(folder) / "kernels"
    spec_dir = kernels / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "resnet_tf grader (Python)",
        "language": "python",
        "interrupt_mode": "signal",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return kernels


def kernel_environment(log_path: Path) -> dict[str, str]:
    """The environment of a grading kernel: the grader's, quiet TF, the log path."""
    env = dict(os.environ)
    env.update(QUIET_ENV)
    env[GRADE_LOG_ENV] = str(log_path)
    env.pop("JPY_PARENT_PID", None)
    package_root = str(Path(__file__).resolve().parents[2])
    existing = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = package_root + (os.pathsep + existing if existing else "")
    return env


def read_log(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON records in the log at ``path`` (in order) and the count of unreadable lines."""
    if not path.exists():
        return [], 0
    records, bad = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(record, dict) and isinstance(record.get("problem"), str | int):
            records.append(record)
        else:
            bad += 1
    return records, bad


async def execute_notebook(
    notebook: Any,
    workdir: Path,
    cell_timeout: float,
    notebook_timeout: float,
    kernels_dir: Path,
) -> Execution:
    """Run ``notebook`` (an nbformat node, modified in place) in a fresh kernel.

    The kernel's working folder is ``workdir``; the check log lives beside it in a
    private folder. Never raises for anything the notebook does.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    log_dir = Path(tempfile.mkdtemp(prefix="log-", dir=workdir.parent))
    log_path = log_dir / "checks.jsonl"
    errors: list[CellError] = []

    def on_cell_executed(cell: Any, cell_index: int, execute_reply: dict) -> None:
        content = (execute_reply or {}).get("content", {})
        if content.get("status") == "error":
            errors.append(CellError(cell_index, str(content.get("ename", "Error")),
                                    str(content.get("evalue", ""))))

    sent: list[int] = []

    def on_cell_execute(cell: Any, cell_index: int) -> None:
        sent.append(cell_index)

    spec_manager = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=spec_manager)
    if os.name == "posix" and len(str(log_dir)) < 80:
        # local sockets in a private folder: no TCP ports to race for, nothing on the network
        km.transport = "ipc"
        km.ip = str(log_dir / "kernel")
    per_cell = max(1, int(round(cell_timeout)))
    client = NotebookClient(
        notebook,
        km=km,
        timeout=per_cell,
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": TIMEOUT_ENAME,
            "evalue": f"the cell ran longer than {per_cell} s and was interrupted",
            "traceback": [],
        },
        record_timing=False,
        shutdown_kernel="immediate",
        startup_timeout=120,
        iopub_timeout=4,
        on_cell_execute=on_cell_execute,
        on_cell_executed=on_cell_executed,
        resources={"metadata": {"path": str(workdir)}},
    )
    started = time.perf_counter()
    outcome, message = "completed", ""
    stderr_path = log_dir / "kernel-stderr.txt"
    stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in the finally below
    task = asyncio.ensure_future(client.async_execute(
        env=kernel_environment(log_path), cwd=str(workdir), cleanup_kc=True, stderr=stderr,
    ))
    try:
        done, _ = await asyncio.wait({task}, timeout=notebook_timeout)
        if not done:
            # nbclient turns the cancellation into its own errors: ignore what it raises
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            outcome = "timeout"
            message = (f"the notebook ran longer than {notebook_timeout:g} s in total "
                       "and was stopped")
        else:
            task.result()
    except DeadKernelError:
        outcome, message = "kernel_died", _death_message(km, stderr_path)
    except Exception as exc:  # noqa: BLE001 - anything the kernel machinery throws
        if not await _alive(km):
            outcome, message = "kernel_died", _death_message(km, stderr_path)
        else:
            outcome = "kernel_failed"
            message = f"the kernel could not run the notebook: {type(exc).__name__}: {exc}"
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await _shutdown(km)
        stderr.close()
        atexit.unregister(client._cleanup_kernel)  # nbclient leaves it behind on errors
    records, bad = read_log(log_path)
    return Execution(
        outcome=outcome, records=records, bad_log_lines=bad, cell_errors=errors,
        message=message, seconds=time.perf_counter() - started, notebook=notebook,
        cells_sent=len(sent),
    )


def _death_message(km: Any, stderr_path: Path | None = None) -> str:
    """Explain a dead kernel: its exit code when known, and the last line it printed."""
    code = None
    provisioner = getattr(km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    if process is not None:
        code = process.poll()
    text = "the kernel died while running the notebook"
    if code is not None:
        text += f" (exit code {code}"
        if code in (134, -6):
            text += ": aborted, e.g. a crash inside TensorFlow"
        elif code in (137, -9):
            text += ": killed, e.g. out of memory"
        text += ")"
    last = _last_line(stderr_path)
    if last:
        text += f"; its last words: {last}"
    return text


def _last_line(path: Path | None) -> str:
    """The last non-blank line of a text file (at most 200 characters), or ``""``."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()]
    except (OSError, AttributeError):
        return ""
    lines = [ln for ln in lines if ln and "running over TCP without encryption" not in ln]
    return lines[-1][:200] if lines else ""


async def _alive(km: Any) -> bool:
    """Whether the kernel process is still running (False when unsure)."""
    try:
        return bool(await km.is_alive())
    except Exception:  # noqa: BLE001
        return False


async def _shutdown(km: Any) -> None:
    """Stop the kernel at once and free its resources; never raises."""
    try:
        if km.has_kernel:
            await km.shutdown_kernel(now=True)
    except Exception:  # noqa: BLE001
        try:
            if km.has_kernel:
                await km.kill_kernel()
        except Exception:  # noqa: BLE001
            pass
    try:
        cleanup = km.cleanup_resources()
        if inspect.isawaitable(cleanup):
            await cleanup
    except Exception:  # noqa: BLE001
        pass


def new_notebook_copy(data: bytes) -> Any:
    """Parse notebook bytes into an nbformat v4 node (raises on anything else)."""
    return nbformat.reads(data.decode("utf-8"), as_version=4)

"""Running one submission in its own kernel and collecting its answers as data.

The kernel is the grader's own Python with ipykernel, started from a kernelspec written
for this submission alone (in a folder the kernel cannot write), inside the protections
of :mod:`resnet_tf.grading.sandbox`, with its working folder holding nothing but its own
copy of the notebook, and a fresh ``HOME`` there. Its environment is built from scratch:
nothing of the grader's is passed on except what Python, TensorFlow and the package need.

1. **Run.** Every cell runs, errors or not. A cell that runs longer than
   ``cell_timeout`` seconds is interrupted and recorded as timed out, and the next cell
   runs. The whole notebook has a wall-clock limit (``notebook_timeout``). Outputs are
   capped per cell and per notebook, so a cell printing gigabytes cannot fill the
   grader's memory or disk.
2. **Collect.** After every cell that calls ``check``, and once more when the notebook
   is done (also after a time limit, once the running cell has been interrupted), the
   grader sends one request per problem concerned (:mod:`resnet_tf.exercises.handover`):
   the kernel prints the answers it last checked as JSON between a random marker that
   only this request carries, and runs function answers on the cases the grader sends
   (hidden ones included). Only the output of that request is read; it is parsed as data
   (:mod:`resnet_tf.exercises.wire`). The final collection is the one that counts; the
   earlier ones keep the answers of a kernel that later crashes or stalls.
3. **Stop.** The kernel is shut down and its whole process group (its PID namespace
   under bubblewrap) is killed, so nothing it started outlives the submission.

Nothing the kernel writes is read back as a grade: the scores are computed afterwards in
the grader's process (:mod:`resnet_tf.grading.scoring`).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import stat
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from . import sandbox as sb

KERNEL_NAME = "resnet-tf-grader"
TIMEOUT_ENAME = "CellTimeout"
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1",
             "PYTHONDONTWRITEBYTECODE": "1"}
#: Variables of the grader's environment a kernel may see (prefixes end with ``_``).
PASSED_ENV = ("PATH", "LANG", "LC_", "TZ", "RESNET_TF_PROFILE", "TF_", "CUDA_VISIBLE_DEVICES",
              "OMP_NUM_THREADS", "KERAS_BACKEND", "XLA_FLAGS")
CELL_OUTPUT_LIMIT = 1_000_000  # characters of output kept per cell
NOTEBOOK_OUTPUT_LIMIT = 20_000_000  # characters of output kept per notebook
ZMQ_MESSAGE_LIMIT = 64 * 2**20  # bytes; a larger message from the kernel is dropped
TRUNCATED = "\n[output truncated by the grader: {dropped} more characters not kept]\n"


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
class Collected:
    """What the kernel handed over for one problem: the parsed record, or why not."""

    problem: str
    record: dict[str, Any] | None
    error: str = ""


@dataclass
class Execution:
    """What running a notebook produced.

    ``outcome`` is ``"completed"`` (every cell was sent to the kernel), ``"timeout"``
    (the notebook's wall-clock limit stopped it), ``"kernel_died"`` or
    ``"kernel_failed"`` (the kernel could not be started or talked to); ``message``
    explains anything but ``"completed"``. ``answers`` holds what the kernel handed over
    per problem (empty when it could not be asked).
    """

    outcome: str
    answers: dict[str, Collected] = field(default_factory=dict)
    cell_errors: list[CellError] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0
    notebook: Any = None
    cells_sent: int = 0
    truncated: bool = False

    @property
    def failed_to_start(self) -> bool:
        """True when the kernel died or failed before any cell was sent to it.

        Nothing of the submission ran, so the failure is the machine's, not the
        student's (e.g. a socket that could not be made), and a retry is in order.
        """
        return self.outcome in ("kernel_died", "kernel_failed") and self.cells_sent == 0


@dataclass
class Request:
    """What the grader asks the kernel about one problem: function cases per part."""

    problem: str
    cases: dict[str, list[Any]] = field(default_factory=dict)


def write_kernelspec(folder: str | os.PathLike, argv: Sequence[str] | None = None) -> Path:
    """Write the kernelspec (``argv``: default this Python) under ``folder``.

    The spec is ``<folder>/kernels/resnet-tf-grader/kernel.json``; returns the kernels
    folder. Interrupts are sent as messages, so they reach the kernel inside a sandbox.
    """
    kernels = Path(folder) / "kernels"
    spec_dir = kernels / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": list(argv or sb.python_argv()),
        "display_name": "resnet_tf grader (Python)",
        "language": "python",
        "interrupt_mode": "message",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return kernels


def package_root() -> str:
    """The folder that holds the grader's own ``resnet_tf`` package (its import location).

    This is where the package is installed (site-packages, or a checkout on
    ``PYTHONPATH``), not the course repository: the kernel imports the same package as
    the grader, whatever the layout around it.
    """
    import resnet_tf

    return str(Path(resnet_tf.__file__).resolve().parent.parent)


def kernel_environment(workdir: Path) -> dict[str, str]:
    """The environment of a grading kernel, built from scratch (see the module docstring).

    ``HOME`` and the caches of IPython, Matplotlib and Keras point into ``workdir``; the
    package folder of the grader's ``resnet_tf`` comes first on ``PYTHONPATH``.
    """
    env = {name: value for name, value in os.environ.items()
           if any(name == p or (p.endswith("_") and name.startswith(p)) for p in PASSED_ENV)}
    env.update(QUIET_ENV)
    home = str(workdir)
    env.update({"HOME": home, "IPYTHONDIR": f"{home}/.ipython",
                "MPLCONFIGDIR": f"{home}/.config/matplotlib", "KERAS_HOME": f"{home}/.keras",
                "XDG_CACHE_HOME": f"{home}/.cache", "TMPDIR": "/tmp"})
    existing = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([package_root(), *existing]))
    env.setdefault("PATH", os.defpath)
    return env


def collection_code(request: Request, marker: str) -> str:
    """The code sent to the kernel to collect one problem's answers."""
    from resnet_tf.exercises import wire

    payload = json.dumps({"problem": request.problem, "marker": marker,
                          "cases": {part: [wire.encode(list(args)) for args in cases]
                                    for part, cases in request.cases.items()}},
                         allow_nan=True)
    return ('__import__("resnet_tf.exercises.handover", fromlist=["_"]).respond('
            f"{payload!r})")


def parse_reply(text: str, marker: str, problem: str) -> Collected:
    """Find the one marked payload in ``text`` and parse it (see the module docstring)."""
    from resnet_tf.exercises import wire

    pieces = text.split(marker)
    if len(pieces) != 3:
        why = ("no answers came back" if len(pieces) < 3 else
               "the kernel printed the marker more than once, so its answers are ambiguous")
        return Collected(problem, None, why)
    try:
        record = wire.loads(pieces[1])
    except wire.WireError as error:
        return Collected(problem, None, str(error))
    if not isinstance(record, dict) or record.get("problem") != problem:
        return Collected(problem, None, "the answers are not a record of this problem")
    return Collected(problem, record)


def _notebook_client_class():
    """NotebookClient that caps how much output it keeps."""
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """Keeps at most ``cell_limit`` characters per cell and ``total_limit`` overall."""

        cell_limit = CELL_OUTPUT_LIMIT
        total_limit = NOTEBOOK_OUTPUT_LIMIT

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.kept: dict[int, int] = {}
            self.dropped: dict[int, int] = {}
            self.total = 0

        def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001, D102
            size = _message_size(msg)
            kept = self.kept.get(cell_index, 0)
            if kept + size > self.cell_limit or self.total + size > self.total_limit:
                self.dropped[cell_index] = self.dropped.get(cell_index, 0) + size
                return None
            self.kept[cell_index] = kept + size
            self.total += size
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


def _message_size(msg: dict[str, Any]) -> int:
    """Characters of output an iopub message carries."""
    content = msg.get("content") or {}
    if "text" in content:
        return len(str(content["text"]))
    size = 0
    for key in ("data", "traceback", "evalue"):
        value = content.get(key)
        if isinstance(value, dict):
            size += sum(len(str(v)) for v in value.values())
        elif isinstance(value, list):
            size += sum(len(str(v)) for v in value)
        elif value is not None:
            size += len(str(value))
    return size


def _own_dir(path: Path, mode: int = 0o711) -> Path:
    path.mkdir(mode=mode)
    os.chmod(path, mode)
    return path


async def execute_notebook(
    notebook: Any,
    tmp: Path,
    cell_timeout: float,
    notebook_timeout: float,
    requests: Sequence[Request],
    box: sb.Sandbox,
    limits: sb.Limits,
    hidden: Sequence[Path] = (),
    jobs: int = 1,
    submission_copy: bytes | None = None,
    shared: Path | None = None,
) -> Execution:
    """Run ``notebook`` (modified in place) in a fresh kernel under ``tmp``, then collect.

    ``tmp`` is a new, private folder of this submission; the kernel works in
    ``tmp/work`` (which gets ``submission_copy`` as ``submission.ipynb``) and may read
    the run's ``shared`` caches. Never raises for anything the notebook does.
    """
    import zmq
    import zmq.asyncio
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient.exceptions import DeadKernelError

    workdir = _own_dir(tmp / "work", 0o755)
    private = _own_dir(tmp / "ipc", 0o700)
    grader_only = _own_dir(tmp / "grader", 0o700)
    if submission_copy is not None:
        (workdir / "submission.ipynb").write_bytes(submission_copy)
    if shared is not None and (shared / "matplotlib").is_dir():
        shutil.copytree(shared / "matplotlib", workdir / ".config" / "matplotlib")
    sb.give(workdir, box)
    sb.give(private, box)
    env = kernel_environment(workdir)
    argv = sb.wrap(box, sb.python_argv(), workdir, private, [*hidden, tmp.parent], env,
                   readable=[Path(package_root())])
    kernels_dir = write_kernelspec(grader_only, argv)

    context = zmq.asyncio.Context()
    context.setsockopt(zmq.MAXMSGSIZE, ZMQ_MESSAGE_LIMIT)
    spec_manager = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=spec_manager,
                            context=context)
    km.transport = "ipc"
    km.ip = str(private / "k")
    km.connection_file = str(private / "connection.json")
    km.write_connection_file()
    if box.uid is not None:
        os.chown(km.connection_file, box.uid, box.gid if box.gid is not None else -1)

    errors: list[CellError] = []
    sent: list[int] = []

    def on_cell_executed(cell: Any, cell_index: int, execute_reply: dict) -> None:
        content = (execute_reply or {}).get("content", {})
        if content.get("status") == "error":
            errors.append(CellError(cell_index, str(content.get("ename", "Error"))[:200],
                                    str(content.get("evalue", ""))[:1000]))

    def on_cell_execute(cell: Any, cell_index: int) -> None:
        sent.append(cell_index)

    per_cell = max(1, int(round(cell_timeout)))
    client_class = _notebook_client_class()
    common = dict(km=km, timeout=per_cell, allow_errors=True, interrupt_on_timeout=True,
                  record_timing=False, iopub_timeout=4,
                  error_on_timeout={"ename": TIMEOUT_ENAME,
                                    "evalue": f"the cell ran longer than {per_cell} s and "
                                              "was interrupted", "traceback": []})
    client = client_class(notebook, on_cell_execute=on_cell_execute,
                          on_cell_executed=on_cell_executed, **common)
    started = time.perf_counter()
    outcome, message = "completed", ""
    stderr_path = grader_only / "kernel-stderr.txt"
    stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in the finally below
    kc = None
    pgid = None
    group = None
    answers: dict[str, Collected] = {}
    limits = sb.Limits(**{**limits.__dict__,
                          "cpu_seconds": limits.cpu_seconds or int(
                              (notebook_timeout + 120) * (os.cpu_count() or 1))})
    try:
        try:
            if box.cgroup_parent:
                group = sb.PidsGroup(box.cgroup_parent, limits.processes)
            await km.start_kernel(env=env, cwd=str(workdir), stdout=stderr, stderr=stderr,
                                  preexec_fn=sb.preexec(limits, box, jobs, group))
            process = getattr(km.provisioner, "process", None)
            if process is not None:
                pgid = process.pid  # the kernel (or bwrap) leads its own session
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=120)
            client.kc = kc
        except Exception as exc:  # noqa: BLE001 - the kernel could not be started
            outcome = "kernel_failed"
            message = f"the kernel could not be started: {type(exc).__name__}: {exc}"
            last = _last_line(stderr_path)
            if last:
                message += f"; it said: {last}"
            raise _Stop from None

        collect_timeout = min(max(30.0, cell_timeout), notebook_timeout)

        async def run_cells() -> None:
            for index, cell in enumerate(client.nb.cells):
                await client.async_execute_cell(
                    cell, index, execution_count=client.code_cells_executed + 1)
                asked = _checked_in(cell, requests)
                if asked:
                    # answers so far, kept in case the kernel dies or stalls later
                    got = await _collect(kc, client_class, common, asked, collect_timeout)
                    answers.update({k: v for k, v in got.items() if v.record is not None})

        task = asyncio.ensure_future(run_cells())
        try:
            done, _ = await asyncio.wait({task}, timeout=notebook_timeout)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                outcome = "timeout"
                message = (f"the notebook ran longer than {notebook_timeout:g} s in total "
                           "and was stopped")
                await _interrupt(km)
            else:
                task.result()
        except asyncio.CancelledError:
            # the run is being stopped: stop the cells too, so no task outlives the kernel
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        except DeadKernelError:
            outcome, message = "kernel_died", _death_message(km, stderr_path)
        except Exception as exc:  # noqa: BLE001 - anything the kernel machinery throws
            if not await _alive(km):
                outcome, message = "kernel_died", _death_message(km, stderr_path)
            else:
                outcome = "kernel_failed"
                message = f"the kernel could not run the notebook: {type(exc).__name__}: {exc}"
        if outcome in ("completed", "timeout") and await _alive(km):
            # the final word: the answers as the notebook leaves them
            final = await _collect(kc, client_class, common, requests,
                                   collect_timeout if outcome == "completed" else 5.0)
            for pid, got in final.items():
                if got.record is not None or pid not in answers:
                    answers[pid] = got
    except _Stop:
        pass
    finally:
        await _shutdown(km, kc, pgid)
        stderr.close()
        context.destroy(linger=0)
        if group is not None:
            group.remove()
        if not box.bwrap:
            _kill_strays(str(workdir))
    if client.dropped:
        for index, dropped in client.dropped.items():
            if index < len(notebook.cells):
                notebook.cells[index].setdefault("outputs", []).append(
                    nbformat.v4.new_output("stream", name="stderr",
                                           text=TRUNCATED.format(dropped=dropped)))
    return Execution(
        outcome=outcome, answers=answers, cell_errors=errors, message=message,
        seconds=time.perf_counter() - started, notebook=notebook, cells_sent=len(sent),
        truncated=bool(client.dropped),
    )


class _Stop(Exception):
    """The kernel did not start: skip to the clean-up."""


def _checked_in(cell: Any, requests: Sequence[Request]) -> list[Request]:
    """The problems a code cell may have checked: those it names, or all if it calls check."""
    source = str(cell.get("source", "")) if cell.get("cell_type") == "code" else ""
    if "check" not in source:
        return []
    named = [r for r in requests if r.problem in source]
    return named or list(requests)


async def _collect(kc: Any, client_class: Any, common: dict, requests: Sequence[Request],
                   timeout: float) -> dict[str, Collected]:
    """Ask the kernel for each problem's answers (see the module docstring).

    Stops at the first request the kernel does not answer in time (it is stuck).
    """
    from nbclient.exceptions import DeadKernelError
    from nbformat.v4 import new_code_cell, new_notebook

    answers: dict[str, Collected] = {}
    for request in requests:
        marker = "@@" + secrets.token_hex(16) + "@@"
        cell = new_code_cell(collection_code(request, marker))
        collector = client_class(new_notebook(cells=[cell]), **{**common,
                                                               "timeout": int(timeout)})
        collector.cell_limit = collector.total_limit = 40 * 2**20
        collector.kc = kc
        try:
            # a hard bound too: a kernel that ignores interrupts never replies
            await asyncio.wait_for(collector.async_execute_cell(cell, 0, store_history=False),
                                   timeout + 2.0)
        except asyncio.TimeoutError:
            answers[request.problem] = Collected(
                request.problem, None, f"handing over the answers took longer than "
                f"{int(timeout)} s (the kernel did not respond)")
            break
        except DeadKernelError:
            answers[request.problem] = Collected(request.problem, None,
                                                 "the kernel died while handing over answers")
            break
        except Exception as exc:  # noqa: BLE001
            answers[request.problem] = Collected(request.problem, None,
                                                 f"{type(exc).__name__}: {exc}")
            continue
        text = "".join(str(o.get("text", "")) for o in cell.get("outputs", [])
                       if o.get("output_type") == "stream" and o.get("name") == "stdout")
        answers[request.problem] = parse_reply(text, marker, request.problem)
        if any(o.get("ename") == TIMEOUT_ENAME for o in cell.get("outputs", [])):
            answers[request.problem] = Collected(
                request.problem, None, f"handing over the answers took longer than "
                f"{int(timeout)} s (a function answer that does not return?)")
            break
    return answers


async def _interrupt(km: Any) -> None:
    """Interrupt the running cell and give the kernel a moment to settle."""
    try:
        await km.interrupt_kernel()
        await asyncio.sleep(1.0)
    except Exception:  # noqa: BLE001
        pass


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


def _last_line(path: Path | None, tail: int = 4096) -> str:
    """The last non-blank line of a text file's tail (at most 200 characters), or ``""``."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - tail))
            text = handle.read(tail).decode("utf-8", errors="replace")
    except (OSError, TypeError):
        return ""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and "running over TCP without encryption" not in ln]
    return lines[-1][:200] if lines else ""


async def _alive(km: Any) -> bool:
    """Whether the kernel process is still running (False when unsure)."""
    try:
        return bool(await km.is_alive())
    except Exception:  # noqa: BLE001
        return False


async def _shutdown(km: Any, kc: Any, pgid: int | None) -> None:
    """Stop the kernel at once, kill its process group, free its resources; never raises."""
    if kc is not None:
        try:
            kc.stop_channels()
        except Exception:  # noqa: BLE001
            pass
    try:
        if km.has_kernel:
            await km.shutdown_kernel(now=True)
    except Exception:  # noqa: BLE001
        try:
            if km.has_kernel:
                await km.kill_kernel()
        except Exception:  # noqa: BLE001
            pass
    if pgid is not None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    try:
        await km.cleanup_resources()
    except Exception:  # noqa: BLE001
        pass


def _kill_strays(workdir: str) -> None:
    """Without a PID namespace: kill processes still working in ``workdir`` (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == workdir or cwd.startswith(workdir + os.sep):
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def regular_file_size(path: Path) -> int:
    """The size of ``path`` if it is a regular file (not followed if a link); else raise.

    Raises :class:`OSError` for links, FIFOs, devices, sockets and folders, so nothing
    but a plain file is ever opened.
    """
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        kind = ("a symbolic link" if stat.S_ISLNK(info.st_mode) else
                "a named pipe" if stat.S_ISFIFO(info.st_mode) else
                "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else
                "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file")
        raise OSError(f"{path.name} is {kind}, not a regular file")
    return info.st_size


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refusing files over ``limit`` bytes.

    The file is checked with ``lstat`` before it is opened (without following links and
    without blocking on a FIFO), and checked again through the open handle.
    """
    if regular_file_size(path) > limit:
        raise OSError(f"{path.name} is larger than {limit // 2**20} MB")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path.name} is not a regular file")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise OSError(f"{path.name} is larger than {limit // 2**20} MB")
        return b"".join(chunks)
    finally:
        os.close(fd)


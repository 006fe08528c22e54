"""Execute the project's paired notebooks the way nbval will re-run them.

:func:`execute` reads a jupytext percent ``.py``, runs it top to bottom in a
fresh kernel in the ``quick`` profile and writes the ``.ipynb`` twin with its
outputs. TensorFlow's native log lines are silenced and the kernel does not
capture C-level stderr (kernels under pytest cannot see it either), so the
stored outputs are exactly what a re-execution produces.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "RESNET_TF_PROFILE": "quick", "PYTHONHASHSEED": "0"}
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def execute(
    source: str | Path,
    timeout: int = 900,
    env: Mapping[str, str] | None = None,
    output: str | Path | None = None,
    select: Callable[[list], list] | None = None,
) -> float:
    """Run ``source`` (percent ``.py``) and write its ``.ipynb``; return the seconds taken.

    ``timeout`` bounds each cell. A cell that raises stops the run with
    ``nbclient``'s ``CellExecutionError`` (nothing is written then).

    For tests of other profiles: ``env`` adds or overrides environment variables
    of the kernel only (for example ``{"RESNET_TF_PROFILE": "full"}``; this
    process's environment is left alone), ``output`` writes the executed
    notebook elsewhere than next to ``source`` (``None``: next to it), and
    ``select`` maps the list of cells to the cells to run (e.g. a prefix).
    """
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    source = Path(source)
    os.environ.update(QUIET_ENV)
    os.environ.pop("MPLBACKEND", None)  # let the kernel draw inline figures
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    if select is not None:
        notebook.cells = select(list(notebook.cells))
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
        resources={"metadata": {"path": str(source.parent)}},
    )
    kernel_env = {**os.environ, **(env or {})} if env else None
    started = time.perf_counter()
    if kernel_env is None:
        client.execute()
    else:
        client.execute(env=kernel_env)
    elapsed = time.perf_counter() - started
    nbformat.write(notebook, Path(output) if output is not None else source.with_suffix(".ipynb"))
    return elapsed

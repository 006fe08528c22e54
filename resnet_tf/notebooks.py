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
from pathlib import Path

QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "RESNET_TF_PROFILE": "quick", "PYTHONHASHSEED": "0"}
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def execute(source: str | Path, timeout: int = 900) -> float:
    """Run ``source`` (percent ``.py``) and write its ``.ipynb``; return the seconds taken.

    ``timeout`` bounds each cell. A cell that raises stops the run with
    ``nbclient``'s ``CellExecutionError`` (nothing is written then).
    """
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    source = Path(source)
    os.environ.update(QUIET_ENV)
    os.environ.pop("MPLBACKEND", None)  # let the kernel draw inline figures
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
        resources={"metadata": {"path": str(source.parent)}},
    )
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    nbformat.write(notebook, source.with_suffix(".ipynb"))
    return elapsed

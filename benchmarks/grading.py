"""Seconds per submission of ``python -m resnet_tf grade`` on a planted class.

The class is made of copies of one assignment's solved master (``solutions/``) and blank
scaffold (``exercises/``): two thirds solved, one third blank. When the notebooks have a
``STUDENT_ID = ""`` cell, each copy gets one of a few student ids written into it (the
solved copies then recompute their answers for that id's parameters).

    python benchmarks/grading.py                       # 30 submissions, --jobs 1 and 2
    python benchmarks/grading.py --jobs 2              # the class-of-30 figure (target 60 s)
    python benchmarks/grading.py --size 10 --jobs 2 --json results/grading.json

Besides the wall time it reports the CPU seconds the grader and its kernels used per
submission, which depends much less on what else the machine is doing than the wall time
does: on an idle machine with ``--jobs 2`` on 2 cores the wall time of a class is about
``size x cpu_per_submission / 2``. The kernels run in their own PID namespace and are
killed, never reaped by the grader, so their time is sampled from ``/proc`` (every
0.2 s, the grader's process tree; the last fraction of a second of each kernel is missed,
so the figure is a slight underestimate).

The grader runs as a subprocess of the Python running this script, with the repository
this script belongs to first on ``PYTHONPATH`` (``--repo`` picks another checkout, e.g.
an older one for a before/after comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ID_LINE = re.compile(r'^STUDENT_ID = ""', re.MULTILINE)
STUDENT_IDS = ("s1001", "s1002", "s1003", "s1004", "s1005")


def plant_class(repo: Path, notebook: str, size: int, folder: Path) -> int:
    """Write ``size`` submissions into ``folder``; return how many are solved copies."""
    solved = (repo / "solutions" / f"{notebook}.ipynb").read_text(encoding="utf-8")
    blank = (repo / "exercises" / f"{notebook}.ipynb").read_text(encoding="utf-8")
    n_solved = 0
    for index in range(size):
        text = blank if index % 3 == 2 else solved
        n_solved += text is solved
        student = STUDENT_IDS[index % len(STUDENT_IDS)]
        raw = json.loads(text)
        for cell in raw["cells"]:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                if ID_LINE.search(source):
                    cell["source"] = ID_LINE.sub(f'STUDENT_ID = "{student}"', source, count=1)
                    break
        target = folder / f"student{index:02d}" / f"{notebook}.ipynb"
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(raw), encoding="utf-8")
    return n_solved


def run(repo: Path, submissions: Path, out: Path, jobs: int, extra: list[str]
        ) -> tuple[float, float]:
    """Grade ``submissions`` into ``out`` with ``jobs`` kernels: (wall, CPU) seconds."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    env.setdefault("RESNET_TF_PROFILE", "quick")
    command = [sys.executable, "-m", "resnet_tf", "grade", str(submissions), "--out", str(out),
               "--jobs", str(jobs), "--quiet", *extra]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    seen: dict[tuple[int, str], float] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_tree, args=(process.pid, seen, stop))
    sampler.start()
    code = process.wait()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    if code:
        raise subprocess.CalledProcessError(code, command)
    return wall, sum(seen.values())


def _sample_tree(root: int, seen: dict[tuple[int, str], float], stop: threading.Event,
                 every: float = 0.2) -> None:
    """Record the CPU seconds of ``root`` and its descendants until ``stop`` is set."""
    tick = os.sysconf("SC_CLK_TCK")
    while not stop.is_set():
        parents, times = {}, {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                continue
            fields = text.rsplit(")", 1)[1].split()
            pid = int(entry)
            parents[pid] = int(fields[1])
            # utime, stime of the process itself; start time tells reused pids apart
            times[(pid, fields[19])] = (int(fields[11]) + int(fields[12])) / tick
        for (pid, start), cpu in times.items():
            node = pid
            for _ in range(64):
                if node == root:
                    seen[(pid, start)] = max(cpu, seen.get((pid, start), 0.0))
                    break
                node = parents.get(node, 0)
                if node <= 1:
                    break
        stop.wait(every)


def main(argv: list[str] | None = None) -> int:
    """Plant the class, grade it once per ``--jobs`` value, print seconds per submission."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="checkout to benchmark")
    parser.add_argument("--notebook", default="01_signal_propagation")
    parser.add_argument("--assignment", default="signal_propagation")
    parser.add_argument("--size", type=int, default=30, help="submissions in the class")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args, extra = parser.parse_known_args(argv)
    figures = []
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        submissions = Path(tmp) / "class"
        n_solved = plant_class(args.repo.resolve(), args.notebook, args.size, submissions)
        for jobs in args.jobs:
            out = Path(tmp) / f"out-{jobs}"
            seconds, cpu = run(args.repo.resolve(), submissions, out, jobs,
                               ["--assignment", args.assignment, *extra])
            rows = (out / "gradebook.csv").read_text(encoding="utf-8").splitlines()[1:]
            figures.append({"jobs": jobs, "submissions": args.size, "solved": n_solved,
                            "seconds": round(seconds, 1),
                            "per_submission": round(seconds / args.size, 2),
                            "cpu_seconds": round(cpu, 1),
                            "cpu_per_submission": round(cpu / args.size, 2),
                            "load_average": round(os.getloadavg()[0], 1),
                            "rows": len(rows)})
            print(f"--jobs {jobs}: a class of {args.size} in {seconds:.0f} s "
                  f"({seconds / args.size:.1f} s per submission); CPU {cpu:.0f} s "
                  f"({cpu / args.size:.1f} s per submission); load average "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

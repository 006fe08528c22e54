"""``python -m resnet_tf reproduce table6``: the command line of the reproduction.

Kept free of TensorFlow imports, so building the parser stays fast.
"""

from __future__ import annotations

import argparse
import sys

from . import paper


def register(subparsers) -> None:
    """Add ``reproduce table6`` to the command line."""
    from ..distribute import STRATEGIES
    from .paper import PRECISIONS
    from .pipeline import DATASETS

    reproduce = subparsers.add_parser(
        "reproduce", help="reproduce the paper's CIFAR-10 results (Table 6, Figure 6)",
        description="Reproduce results of He et al. (2015) on CIFAR-10.",
    )
    targets = reproduce.add_subparsers(dest="target", metavar="TARGET", required=True)
    t6 = targets.add_parser(
        "table6", help="CIFAR ResNets (and plain nets): test error next to the paper's",
        description=(
            f"Train the CIFAR ResNets with the paper's recipe ({paper.ITERATIONS // 1000}k "
            f"iterations at batch {paper.BATCH}, lr {paper.LEARNING_RATE:g} divided by "
            f"{1 / paper.DECAY_FACTOR:g} at "
            f"{' and '.join(f'{b // 1000}k' for b in paper.BOUNDARIES)}, "
            f"momentum {paper.MOMENTUM:g}, weight decay {paper.WEIGHT_DECAY:g}, pad-crop-flip) "
            "and write table6.md/.csv, figures.json and the training-curve figure. An "
            "interrupted run continues with --resume; an existing run is never overwritten."
        ),
    )
    t6.add_argument("--depths", type=int, nargs="+", default=list(paper.DEFAULT_DEPTHS),
                    help=f"depths 6n+2 (default: {' '.join(map(str, paper.DEFAULT_DEPTHS))})")
    t6.add_argument("--plain", action="store_true",
                    help="also train the plain twins and draw the degradation figure")
    t6.add_argument("--fast", action="store_true",
                    help="a short one-cycle schedule with label smoothing (NOT the paper's "
                         "recipe): about 91%% for ResNet-20 in minutes on a T4")
    t6.add_argument("--dataset", default="cifar10", choices=DATASETS,
                    help="cifar10 (the paper's); digits or synthetic rehearse on a CPU")
    t6.add_argument("--epochs", type=int, default=None,
                    help="override the number of epochs (default: 64k iterations' worth)")
    t6.add_argument("--steps-per-epoch", type=int, default=None,
                    help="cap the steps of an epoch (default: one pass over the data)")
    t6.add_argument("--batch-size", type=int, default=None,
                    help=f"batch per replica (default {paper.BATCH}; 512 with --fast); the "
                         "global batch is this times the number of replicas and the learning "
                         "rate scales with it")
    t6.add_argument("--lr", type=float, default=None,
                    help=f"learning rate at a global batch of {paper.BATCH} "
                         f"(default {paper.LEARNING_RATE:g})")
    t6.add_argument("--width", type=int, default=paper.WIDTH,
                    help="channels of the first stage")
    t6.add_argument("--strategy", default="auto", choices=STRATEGIES,
                    help="tf.distribute strategy (auto: TPU, else several GPUs, else default)")
    t6.add_argument("--precision", default="auto", choices=PRECISIONS,
                    help="auto: mixed_float16 on GPU, mixed_bfloat16 on TPU, float32 on CPU")
    t6.add_argument("--xla", default="auto", choices=["auto", "on", "off"],
                    help="compile the train step with XLA (auto: on a single GPU)")
    t6.add_argument("--steps-per-execution", type=int, default=None,
                    help="train steps per call into the device (default: 32 on TPU, else 1)")
    t6.add_argument("--cpu-devices", type=int, default=None,
                    help="split the CPU into N logical devices (rehearse --strategy mirrored)")
    t6.add_argument("--seed", type=int, default=0)
    t6.add_argument("--out", default="runs/table6",
                    help="run directory (default runs/table6); never overwritten")
    t6.add_argument("--resume", action="store_true",
                    help="continue the run in --out after an interruption")
    t6.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2],
                    help="Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch")
    t6.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """The :class:`~resnet_tf.reproduce.runner.Table6Config` of parsed arguments."""
    from .runner import Table6Config

    return Table6Config(
        depths=tuple(args.depths), plain=args.plain, fast=args.fast, dataset=args.dataset,
        epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
        lr=args.lr, width=args.width, strategy=args.strategy, precision=args.precision,
        xla=args.xla, steps_per_execution=args.steps_per_execution, seed=args.seed,
        out=args.out, verbose=args.verbose,
    )


def run(args: argparse.Namespace) -> int:
    """Handler of ``reproduce table6``; returns the exit code (1: refused, 130: interrupted)."""
    from ..data import DatasetUnavailableError
    from ..models import blocks_per_stage
    from .runner import RunExistsError, run_table6

    for depth in args.depths:
        try:
            blocks_per_stage(depth)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if args.cpu_devices:
        from ..distribute import split_cpu

        split_cpu(args.cpu_devices)
    config = config_from_args(args)
    try:
        run_table6(config, resume=args.resume)
    except (RunExistsError, DatasetUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with the same command plus --resume (--out {args.out})",
              file=sys.stderr)
        return 130
    return 0

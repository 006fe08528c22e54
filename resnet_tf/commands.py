"""The ``train`` and ``info`` commands."""

from __future__ import annotations

import argparse
import json

from . import paper


def register(subparsers) -> None:
    """Add ``train`` and ``info`` to the command line."""
    train = subparsers.add_parser(
        "train", help="train a model on a dataset with the paper's recipe",
        description="Train a model with SGD + momentum, weight decay and a step schedule.",
    )
    train.add_argument("--model", default="cifar_resnet20",
                       help="cifar_resnet<6n+2>, cifar_preact<6n+2>, cifar_plain<6n+2>")
    train.add_argument("--dataset", default="digits", help="digits (offline) or cifar10")
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("--batch-size", type=int, default=None,
                       help=f"default: {paper.BATCH} (the paper's) on cifar10, 64 on the "
                            "1,437 digits")
    train.add_argument("--lr", type=float, default=paper.LEARNING_RATE)
    train.add_argument("--width", type=int, default=paper.WIDTH,
                       help="channels of the first stage")
    train.add_argument("--schedule", default="step", choices=["step", "cosine", "constant"])
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--save", default=None, help="write the trained model to this .keras file")
    train.set_defaults(func=run_train)

    info = subparsers.add_parser("info", help="versions, devices and the active profile")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    """Print :func:`resnet_tf.environment`."""
    from .runtime import environment

    env = environment()
    if args.json:
        print(json.dumps(env, indent=2))
    else:
        for key, value in env.items():
            print(f"{key:>14}: {value}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Train, evaluate on the test split, optionally save."""
    from . import data, models, training
    from .runtime import profile, seed_everything

    seed_everything(args.seed)
    (x_train, y_train), (x_test, y_test) = data.load(args.dataset)
    x_train, x_test = data.standardize(x_train, x_test)
    kwargs = {}
    if args.model.lower().startswith("cifar_"):
        kwargs = {"input_shape": x_train.shape[1:], "width": args.width,
                  "classes": int(y_train.max()) + 1}
    model = models.build(args.model, **kwargs)
    batch_size = args.batch_size or (paper.BATCH if args.dataset == "cifar10" else 64)
    print(
        f"{model.name}: {model.count_params():,} parameters; {args.dataset}: "
        f"{len(x_train)} train / {len(x_test)} test images {x_train.shape[1:]}; "
        f"profile {profile()}"
    )
    seed_everything(args.seed)  # the run repeats exactly whatever the build drew
    training.fit(
        model, (x_train, y_train), validation=(x_test, y_test), epochs=args.epochs,
        batch_size=batch_size, lr=args.lr, schedule=args.schedule, seed=args.seed,
        verbose=2,
    )
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    print(f"test loss {loss:.4f}, test accuracy {accuracy:.2%}")
    if args.save:
        model.save(args.save)
        print(f"saved {args.save}")
    return 0

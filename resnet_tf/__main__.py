"""``python -m resnet_tf``: see :mod:`resnet_tf.cli`."""

from .cli import main

raise SystemExit(main())

"""Residual blocks outside image classification: adapters, denoisers, Transformer blocks.

Modules, by what they hold:

- :mod:`.adapters`     a small residual adapter :math:`y = x + U\\phi(Dx)` for new tasks
- :mod:`.denoising`    denoisers that predict the clean signal or the noise
- :mod:`.transformer`  Pre-LN and Post-LN Transformer encoder blocks
"""

from .adapters import ResidualAdapter, residual_adapter
from .denoising import conv_denoiser
from .transformer import (
    TransformerBlock,
    transformer_block,
    transformer_layer,
    transformer_stack,
)

__all__ = [
    "ResidualAdapter", "TransformerBlock", "conv_denoiser", "residual_adapter",
    "transformer_block", "transformer_layer", "transformer_stack",
]

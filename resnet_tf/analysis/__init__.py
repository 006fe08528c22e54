"""Instruments for residual networks: gradients, signals, Jacobians, lesions, paths, costs.

Modules, by what they hold:

- :mod:`.gradients`  gradient norms per layer / block, and a training callback
- :mod:`.signal`     activation variance by depth at initialisation
- :mod:`.jacobian`   Jacobians, singular values, block eigenvalues, spectral norms, Lipschitz bounds
- :mod:`.lesion`     removing blocks at test time
- :mod:`.paths`      the path-length view and the gradient carried by each length
- :mod:`.alignment`  cosine between F(x) and the ideal correction t - x
- :mod:`.variation`  total variation of 1-D maps and the residual bounds
- :mod:`.gates`      highway gates and the shortcut / branch split of the gradient
- :mod:`.flops`      parameters and multiply-adds
- :mod:`.receptive_field`  effective receptive field from input gradients
- :mod:`.calibration`      reliability bins and expected calibration error
- :mod:`.landscape`        filter-normalised loss-landscape slices and their curvature
- :mod:`.seeds`            the spread of a result over seeds, and when two results are separated
- :mod:`.weights`          layers whose kernels are identical (tied by a shared initializer)
- :mod:`.graph`      helpers shared by the analyses (blocks: :func:`resnet_tf.blocks.blocks_of`)
"""

from .alignment import AlignmentLogger, cosine_similarity, residual_alignment
from .calibration import expected_calibration_error, reliability_bins
from .flops import (
    basic_block_cost,
    block_costs,
    bottleneck_block_cost,
    count_macs,
    layer_costs,
    layer_macs,
)
from .gates import highway_gate_statistics, shortcut_gradient_share
from .gradients import (
    GradientNormLogger,
    activation_gradient_norms,
    block_gradient_norms,
    layer_gradient_norms,
)
from .graph import Block, blocks_of, find_blocks, select_blocks
from .jacobian import (
    block_jacobian,
    block_jacobian_eigenvalues,
    branch_layers,
    input_output_jacobian,
    jacobian,
    jacobian_singular_values,
    jacobian_spectral_norm,
    layer_lipschitz,
    lipschitz_bounds,
    residual_lipschitz_bound,
    singular_values,
    spectral_norm,
)
from .landscape import filter_normalized_direction, loss_slice, slice_curvature
from .lesion import (
    accuracy,
    evaluate,
    lesion,
    lesion_accuracy,
    lesionable_blocks,
    lesioned,
    predict_eagerly,
    random_lesion_accuracy,
)
from .paths import (
    gradient_by_path_length,
    n_paths,
    path_gradient,
    path_length_distribution,
    path_length_fraction,
    residual_blocks,
    routed,
)
from .receptive_field import effective_receptive_field, input_gradient_map, rms_radius
from .seeds import seed_spread, seed_summary, separated
from .signal import activation_variance, signal_propagation
from .variation import function_total_variation, residual_tv_bounds, sample, total_variation
from .weights import assert_distinct_kernels, tied_kernels

__all__ = [
    "AlignmentLogger", "Block", "GradientNormLogger", "accuracy", "activation_gradient_norms",
    "activation_variance", "basic_block_cost", "block_costs", "block_gradient_norms",
    "block_jacobian", "block_jacobian_eigenvalues", "blocks_of", "bottleneck_block_cost",
    "branch_layers",
    "cosine_similarity", "count_macs", "evaluate", "find_blocks", "function_total_variation",
    "gradient_by_path_length", "highway_gate_statistics", "input_output_jacobian", "jacobian",
    "jacobian_singular_values", "jacobian_spectral_norm", "layer_costs", "layer_gradient_norms",
    "layer_lipschitz", "layer_macs", "lesion", "lesion_accuracy", "lesionable_blocks",
    "lesioned",
    "lipschitz_bounds", "n_paths", "path_gradient", "path_length_distribution",
    "path_length_fraction", "predict_eagerly", "random_lesion_accuracy", "residual_alignment",
    "residual_blocks", "residual_lipschitz_bound", "routed", "residual_tv_bounds", "sample",
    "seed_spread", "seed_summary", "select_blocks", "separated", "shortcut_gradient_share",
    "signal_propagation", "singular_values",
    "spectral_norm", "total_variation",
    "effective_receptive_field", "expected_calibration_error", "filter_normalized_direction",
    "input_gradient_map", "loss_slice", "reliability_bins", "rms_radius", "slice_curvature",
    "tied_kernels", "assert_distinct_kernels",
]

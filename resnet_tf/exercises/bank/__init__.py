"""The problem bank, one module per assignment; importing it registers every problem.

The assignments are declared here, in the order they are handed out; inside each module
the order of registration is the order of the problems in the assignment notebook.
"""

from ..core import PROBLEMS, assignments, define_assignment

define_assignment("signal_propagation", "Signal propagation: why depth breaks plain nets",
                  "01_signal_propagation")
define_assignment("block_jacobians", "Inside a block: the Jacobian I + J_F",
                  "02_block_jacobians")
define_assignment("block_design", "Designing blocks: cost, shortcuts, gates and scaling",
                  "03_block_design")
define_assignment("residual_functions", "What residual nets compute: corrections and ensembles",
                  "04_residual_functions")
define_assignment("dynamics", "Residual networks as ODE solvers", "05_dynamics")

from . import (  # noqa: E402,F401 - imported for the registration side effect
    block_design,
    block_jacobians,
    dynamics,
    residual_functions,
    signal_propagation,
)

# Keep PROBLEMS in hand-out order (assignment by assignment), whatever the import order.
_ordered = {i: PROBLEMS[i] for ids in assignments().values() for i in ids}
PROBLEMS.clear()
PROBLEMS.update(_ordered)

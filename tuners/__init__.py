"""Search algorithms of SPEC P1-P4 as KerasTuner Oracles, with the Tuners that run them."""

from bnas_tf.tuners import scores
from bnas_tf.tuners.child_parent import ChildParent, ChildParentOracle
from bnas_tf.tuners.deployment import DeploymentObjective
from bnas_tf.tuners.differentiable import Differentiable, DifferentiableOracle, discretise
from bnas_tf.tuners.evolution import Evolution, EvolutionOracle
from bnas_tf.tuners.pruning import OperationPruning, OperationPruningOracle
from bnas_tf.tuners.sampling import SamplingOracle
from bnas_tf.tuners.supernet_tuner import SupernetTuner

__all__ = [
    "ChildParent",
    "ChildParentOracle",
    "DeploymentObjective",
    "Differentiable",
    "DifferentiableOracle",
    "Evolution",
    "EvolutionOracle",
    "OperationPruning",
    "OperationPruningOracle",
    "SamplingOracle",
    "SupernetTuner",
    "discretise",
    "scores",
]

"""bnas-tf: binarized neural architecture search for Keras, on Larq, KerasTuner and Larq Compute Engine."""
from bnas_tf._compat import check_stack

check_stack()

from bnas_tf import genotypes, ops, quantizers  # noqa: E402
from bnas_tf.determinism import enable_determinism  # noqa: E402
from bnas_tf.genotype import Genotype, WidthGenotype  # noqa: E402
from bnas_tf.networks import build_network, build_width_network  # noqa: E402
from bnas_tf.quantizers import Binarization  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Binarization", "Genotype", "WidthGenotype", "build_network", "build_width_network", "enable_determinism",
           "ops", "quantizers"]

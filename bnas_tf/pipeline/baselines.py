"""What the searched network is measured against in ``bnas-tf run``: baselines retrained with its schedule.

With ``baselines = n > 0`` (a cell recipe's setting) the run retrains, with exactly the winner's recipe
(cells, channels, binarization, epochs, learning rate, data):

- ``n`` uniform random genotypes of the searched space (the winner's op set, nodes and edges; seeds
  ``seed + 1 .. seed + n``):
  what the search has to beat to be worth its time;
- a hand-designed binary network of stacked binary 3x3 convs (VGG-small's 2-2-2 layout, P3), its width
  chosen so its binary MACs come nearest the winner's;
- P2's published CIFAR-10 cell (``p2_bnas_cifar10``) at the winner's cells and channels.

Each is scored on the test split (Keras, inference mode), costed (binary and float MACs,
:func:`bnas_tf.deploy.costs.profile`) and converted with LCE for its .tflite size; metrics.json keeps
the rows under ``baselines`` and report.md shows them beside the winner.
"""

from __future__ import annotations

import dataclasses
import math
import time

from bnas_tf.convert import to_tflite
from bnas_tf.deploy import costs
from bnas_tf.native_logs import converter_output_hidden
from bnas_tf.pipeline import run_folder, train
from bnas_tf.space import published
from bnas_tf.space.backbones import BACKBONES
from bnas_tf.space.genotype import Genotype, WidthGenotype
from bnas_tf.space.networks import build_width_network

#: The published cell every cell run is compared with (P2's CIFAR-10 BNAS cell, the binary-friendly op set).
PUBLISHED = "p2_bnas_cifar10"


@dataclasses.dataclass
class Baseline:
    """One row of the baselines table."""

    name: str
    kind: str  # "random", "hand", "published"
    test_accuracy: float
    binary_macs: int
    float_macs: int
    tflite_bytes: int
    seconds: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def random_genotypes(recipe, winner: Genotype) -> list:
    """``recipe.baselines`` uniform random genotypes of the winner's space (op set, nodes, every edge or two a
    node, as the winner), seeded after the run's seed."""
    every_edge = len(winner.normal) == winner.nodes * (winner.nodes + 3) // 2
    return [
        Genotype.random(winner.op_set, seed=recipe.seed + i, nodes=winner.nodes, all_edges=every_edge)
        for i in range(1, recipe.baselines + 1)
    ]


def hand_designed(recipe, bundle, multiplier: float):
    """Stacked binary 3x3 convs: VGG-small's layout (2-2-2 convs, max pools, full-precision first conv and
    classifier, P3) at ``multiplier`` times its widths 128..512."""
    return build_width_network(
        WidthGenotype("vgg_small", (1,) * len(BACKBONES["vgg_small"])),
        num_classes=bundle.num_classes,
        input_shape=tuple(bundle.input_shape),
        binarization=recipe.binarization_config(),
        lce_friendly=recipe.lce_friendly,
        width_multiplier=multiplier,
        name="stacked_binary_convs",
    )


def hand_multiplier(recipe, bundle, binary_macs: int) -> float:
    """The width multiplier of :func:`hand_designed` whose binary MACs come nearest ``binary_macs``: every binary
    conv's MACs grow with the square of the widths, so ``sqrt(target / MACs at 1x)``, in 1/64 steps."""
    at_one = costs.profile(hand_designed(recipe, bundle, 1.0))["binary_macs"]
    steps = round(64 * math.sqrt(max(binary_macs, 1) / max(at_one, 1)))
    return min(max(steps, 1), 64) / 64


def measure(name: str, kind: str, result, bundle) -> Baseline:
    """Test accuracy, costs and .tflite size of a trained baseline."""
    model = result.model
    profile = costs.profile(model)
    with converter_output_hidden():
        size = len(to_tflite(model))
    return Baseline(
        name=name,
        kind=kind,
        test_accuracy=train.accuracy(model, bundle.test),
        binary_macs=int(profile["binary_macs"]),
        float_macs=int(profile["float_macs"]),
        tflite_bytes=size,
        seconds=result.seconds,
    )


def run_baselines(recipe, winner: Genotype, winner_model, run_dir: str, bundle, *, verbose: int = 1) -> dict:
    """Train every baseline with ``recipe``'s retraining schedule and record them in metrics.json's ``baselines``.

    Args:
        recipe: the run's cell recipe; ``recipe.baselines`` random genotypes (0: no baselines at all).
        winner: the searched genotype (op set, nodes and edges of the random ones).
        winner_model: the retrained winner (its binary MACs size the hand-designed baseline).
        run_dir: the run folder.
        bundle: the training data (the winner's).
        verbose: 1 prints a line per baseline.

    Returns:
        What metrics.json records: ``{"rows": [...], "random_mean": ..., "seconds": ...}`` (empty when off).
    """
    if not recipe.baselines:
        return {}
    start = time.perf_counter()
    jobs = [
        (f"random genotype (seed {g.name.removeprefix('random_seed')})", "random", g)
        for g in random_genotypes(recipe, winner)
    ]
    jobs.append((f"{PUBLISHED} (P2)", "published", published.get(PUBLISHED)))
    winner_macs = int(costs.profile(winner_model)["binary_macs"])
    multiplier = hand_multiplier(recipe, bundle, winner_macs)
    jobs.append(("stacked binary 3x3 convs", "hand", lambda: hand_designed(recipe, bundle, multiplier)))
    rows = []
    for name, kind, network in jobs:
        if isinstance(network, Genotype):
            result = train.train(network, recipe, bundle, verbose=0)
        else:
            result = train.train(None, recipe, bundle, build=network, verbose=0)
        rows.append(measure(name, kind, result, bundle))
        if verbose:
            print(f"baseline {name}: test accuracy {rows[-1].test_accuracy:.2%} ({result.seconds:.0f} s)", flush=True)
    random_rows = [row.test_accuracy for row in rows if row.kind == "random"]
    record = {
        "rows": [row.as_dict() for row in rows],
        "random_mean": sum(random_rows) / len(random_rows) if random_rows else None,
        "seconds": time.perf_counter() - start,
    }
    run_folder.update_metrics(run_dir, baselines=record)
    return record

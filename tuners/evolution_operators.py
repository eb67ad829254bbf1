"""Selection, crossover and mutation of width genes (SPEC P3), as pure functions.

A gene is a tuple of width ratios, one per searchable layer of a backbone,
each from ``RATIOS`` = {0.25, 0.5, 1, 2, 3, 4}. Every random draw comes from
the ``numpy.random.Generator`` passed in: :class:`~bnas_tf.tuners.EvolutionOracle`
makes one per generation from (seed, generation), so a resumed search breeds
the same genes. Choices the paper leaves open (truncation survivors,
binary tournaments, uniform crossover, per-position mutation, redrawing known
genes) are described in :mod:`bnas_tf.tuners.evolution`.
"""

from __future__ import annotations

import math

import numpy as np

from bnas_tf.space.genotype import WIDTH_RATIOS

__all__ = [
    "MAX_DRAWS",
    "RATIOS",
    "first_generation",
    "mutate",
    "next_generation",
    "random_gene",
    "survivors",
    "tournament_select",
    "uniform_crossover",
]

#: Redraws of a child before accepting a gene seen before (then one already in this generation).
MAX_DRAWS = 50
RATIOS = tuple(float(r) for r in WIDTH_RATIOS)


def random_gene(length: int, rng: np.random.Generator, ratios=RATIOS) -> tuple:
    """A gene of ``length`` ratios drawn uniformly from ``ratios``."""
    return tuple(float(ratios[i]) for i in rng.integers(len(ratios), size=length))


def tournament_select(fitness, size: int, rng: np.random.Generator) -> int:
    """Index of the fittest of ``size`` distinct random entrants (ties: the lowest index)."""
    fitness = np.asarray(fitness, dtype=float)
    entrants = rng.choice(len(fitness), size=min(size, len(fitness)), replace=False)
    return int(max(entrants, key=lambda i: (fitness[i], -i)))


def uniform_crossover(parent_a, parent_b, rng: np.random.Generator) -> tuple:
    """Each position from ``parent_a`` or ``parent_b`` with probability 1/2."""
    from_a = rng.random(len(parent_a)) < 0.5
    return tuple(float(a if take else b) for a, b, take in zip(parent_a, parent_b, from_a))


def mutate(gene, mutation_rate: float, rng: np.random.Generator, ratios=RATIOS) -> tuple:
    """Each position, with probability ``mutation_rate``, becomes one of the *other* ratios."""
    mutated = []
    for ratio in gene:
        if rng.random() < mutation_rate:
            others = [r for r in ratios if not math.isclose(r, ratio)]
            ratio = others[rng.integers(len(others))]
        mutated.append(float(ratio))
    return tuple(mutated)


def _unique_draws(draw, size: int, seen) -> list:
    seen, genes, taken = set(seen), [], set()
    for _ in range(size):
        for attempt in range(2 * MAX_DRAWS):
            gene = draw()
            if gene not in (taken if attempt >= MAX_DRAWS else taken | seen):
                break
        genes.append(gene)
        taken.add(gene)
    return genes


def first_generation(length: int, size: int, rng: np.random.Generator, ratios=RATIOS) -> list:
    """Generation 0: ``size`` distinct random genes (when the space holds that many)."""
    return _unique_draws(lambda: random_gene(length, rng, ratios), size, ())


def next_generation(
    parents,
    parent_fitness,
    size: int,
    rng: np.random.Generator,
    *,
    mutation_rate: float,
    tournament_size: int = 2,
    seen=(),
    ratios=RATIOS,
) -> list:
    """``size`` children: two tournament parents, uniform crossover, per-gene mutation; new genes preferred."""

    def child():
        mother = parents[tournament_select(parent_fitness, tournament_size, rng)]
        father = parents[tournament_select(parent_fitness, tournament_size, rng)]
        return mutate(uniform_crossover(mother, father, rng), mutation_rate, rng, ratios)

    return _unique_draws(child, size, seen)


def survivors(individuals, size: int):
    """Truncation: the ``size`` best distinct genes of ``[(gene, fitness, accuracy), ...]``, as (genes, fitness).

    Rank by fitness, then accuracy (Eq. 4 clips at 0, and a clipped tie
    says nothing), then evaluation order; ``accuracy=None`` (failed) ranks
    last among equal fitness. A gene evaluated twice keeps its best record.
    """
    best = {}  # gene -> (fitness, accuracy, first evaluation)
    for order, (gene, fitness, accuracy) in enumerate(individuals):
        record = (fitness, -math.inf if accuracy is None else accuracy, order)
        best[gene] = max(best[gene], record, key=lambda r: r[:2]) if gene in best else record
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], -item[1][1], item[1][2]))[:size]
    return [gene for gene, _ in ranked], [record[0] for _, record in ranked]

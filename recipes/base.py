"""What a recipe is: an experiment's settings as a frozen dataclass (larq-zoo style, STYLE "larq-zoo").

A recipe names everything a run needs: the data, the binarization, the
search space and strategy settings, the retraining schedule and the export
check. Each paper module (``recipes/cpnas.py``, ...) subclasses one of the
strategy recipes below with that paper's numbers (SPEC) as field defaults:
that is its ``paper`` profile. Its ``QUICK`` dict overrides some fields for a
CPU-sized ``quick`` profile. Users override single fields with
:func:`apply_overrides` (``bnas-tf run --set key=value``); settings never
turn into code paths, the search strategy is a class attribute that
:mod:`bnas_tf.pipeline.search` looks up in its table.

Retraining schedules the papers leave out follow DARTS' evaluation protocol
(SGD momentum 0.9, lr 0.025 cosine to 0, weight decay 3e-4, gradient norm
clipped at 5, cutout 16, auxiliary head weight 0.4, batch 96, 600 epochs);
each module says which fields come from SPEC and which from this default.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import ClassVar

from bnas_tf.deploy.cost_names import COSTS as DEPLOY_COSTS
from bnas_tf.space.backbones import BACKBONES
from bnas_tf.space.binarization_names import AMPLITUDE_GRANULARITIES, BINARIZATION_TAGS, BLOCK_ORDERS, SCHEMES
from bnas_tf.space.networks import default_reduction_cells
from bnas_tf.space.ops import OPS, get_op_set
from bnas_tf.space.quantizers import Binarization
from bnas_tf.space.supernet import CellSpace

LR_SCHEDULES = ("cosine", "one_cycle", "step")
TFLITE_WEIGHTS = ("float", "int8")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NONE = ("none", "null", "")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Settings every experiment has: data, binarization, retraining and export."""

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""  # citation: SPEC section and experiment
    strategy: ClassVar[str] = ""  # key of bnas_tf.pipeline.search.STRATEGIES
    task: ClassVar[str] = "classification"  # what `bnas-tf run` trains and verifies; "face_verification": bnas_tf.face

    # --- data (bnas_tf.data.load)
    dataset: str = "cifar10"
    image_size: int | None = None
    max_examples: int | None = None
    seed: int = 0
    # --- binarization (bnas_tf.space.quantizers.Binarization)
    binarization: str = "W1/A32"
    binarization_scheme: str = "xnor"
    pcnn_amplitude: str = "channel"  # "pcnn" scheme: PCNN's amplitude per output channel, or "layer" (P1)
    binary_block: str = "sign_conv_bn"  # or "bn_sign_conv" (P2's code); bnas_tf.space.ops.conv_block
    lce_friendly: bool = False  # W1/A1: only ops LCE runs as binary kernels, channels rounded up to 32
    # --- deployment objective (bnas_tf.tuners.DeploymentObjective), costed on the evaluation network
    deploy_cost: str = (
        "size_bytes"  # size_bytes, binary_macs, float_macs or fallback_macs (bnas_tf.deploy.lce_profile.lce_profile)
    )
    deploy_budget: float | None = None  # candidates costing more fail before training; never an over-budget winner
    deploy_penalty: float = 0.0  # lam of max(objective - lam * cost / base_cost, 0); 0 = none
    # --- search data
    search_batch_size: int = 64
    search_steps_per_epoch: int | None = None
    # --- retraining the winner (bnas_tf.pipeline.train)
    train_epochs: int = 600
    train_batch_size: int = 96
    train_steps_per_epoch: int | None = None
    train_learning_rate: float = 0.025
    train_momentum: float = 0.9
    train_weight_decay: float = 3e-4
    lr_schedule: str = "cosine"  # "cosine" (train_learning_rate -> lr_min), "one_cycle" (P2) or "step"
    lr_min: float = 0.0  # cosine's last rate; one_cycle's first and last of the cycle (P2: 4e-4)
    lr_milestones: tuple[int, ...] = ()  # epochs where a "step" schedule multiplies lr by lr_decay
    lr_decay: float = 0.1
    gradient_clip: float = 5.0  # global gradient norm; 0 = no clipping
    augment: bool = True
    cutout: int = 16
    label_smoothing: float = 0.0
    # --- export (bnas_tf.convert.to_tflite / verify)
    tflite_weights: str = "float"  # "int8": W1/A32 nets' ±scale kernels stored in 8 bits (LCE packs only W1/A1)
    verify_samples: int = 10000

    def __post_init__(self):
        if self.binarization not in BINARIZATION_TAGS:
            raise ValueError(f"binarization must be one of {', '.join(BINARIZATION_TAGS)} (got {self.binarization!r})")
        if self.binarization_scheme not in SCHEMES:
            raise ValueError(
                f"binarization_scheme must be one of {', '.join(SCHEMES)} (got {self.binarization_scheme!r})"
            )
        if self.tflite_weights not in TFLITE_WEIGHTS:
            raise ValueError(f"tflite_weights must be one of {', '.join(TFLITE_WEIGHTS)} (got {self.tflite_weights!r})")
        if self.tflite_weights == "int8" and self.binarization == "W1/A1":
            raise ValueError("tflite_weights='int8' is for W1/A32 networks; LCE already stores W1/A1 weights in 1 bit")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)} (got {self.lr_schedule!r})")
        if self.pcnn_amplitude not in AMPLITUDE_GRANULARITIES:
            raise ValueError(
                f"pcnn_amplitude must be one of {', '.join(AMPLITUDE_GRANULARITIES)} (got {self.pcnn_amplitude!r})"
            )
        if self.binary_block not in BLOCK_ORDERS:
            raise ValueError(f"binary_block must be one of {', '.join(BLOCK_ORDERS)} (got {self.binary_block!r})")
        if self.lr_min > self.train_learning_rate:
            raise ValueError(
                f"lr_min ({self.lr_min}) must be <= train_learning_rate ({self.train_learning_rate}); "
                "it is the lowest rate of the schedule"
            )
        if self.lr_schedule == "one_cycle" and self.lr_min <= 0:
            raise ValueError("lr_schedule='one_cycle' needs lr_min > 0, its lowest rate (P2: --set lr_min=4e-4)")
        if self.lr_schedule == "step" and not self.lr_milestones:
            raise ValueError("lr_schedule='step' needs lr_milestones, e.g. --set lr_milestones=60,120,180")
        if self.deploy_cost not in DEPLOY_COSTS:
            raise ValueError(f"deploy_cost must be one of {', '.join(DEPLOY_COSTS)} (got {self.deploy_cost!r})")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1) (got {self.label_smoothing})")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{field.name} must be a finite number (got {value})")
            if field.name in _POSITIVE and value is not None and value <= 0:
                raise ValueError(f"{field.name} must be positive (got {value!r})")
            if field.name in _NON_NEGATIVE and value < 0:
                raise ValueError(f"{field.name} must be >= 0 (got {value!r})")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be an integer in 0..{MAX_SEED} (got {self.seed}): NumPy takes 32-bit seeds")
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in self.lr_milestones):
            raise ValueError(f"lr_milestones must be epochs >= 1 (got {list(self.lr_milestones)})")
        if self.image_size is not None:
            self.check_images(self.image_size, self.image_size)

    def check_images(self, height: int, width: int) -> None:
        """Refuse images too small for the networks these settings build (a ValueError naming the settings).

        Called with ``image_size`` when the recipe is made, and with the loaded data's size before a run
        starts (``bnas_tf.pipeline.run``), so a bad size fails before any search or file.
        """

    def deployed_network_settings(self) -> dict:
        return {}

    def binarization_config(self, tag: str | None = None) -> Binarization:
        """The :class:`~bnas_tf.space.quantizers.Binarization` these settings name (of ``tag``, same scheme, if
        given)."""
        weight_bits, activation_bits = BINARIZATION_TAGS[self.binarization if tag is None else tag]
        return Binarization(
            self.binarization_scheme,
            weight_bits=weight_bits,
            activation_bits=activation_bits,
            amplitude=self.pcnn_amplitude,
            block=self.binary_block,
        )

    def settings(self) -> dict:
        """Every field as JSON-able data (what metrics.json records)."""
        return {name: list(v) if isinstance(v, tuple) else v for name, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class CellRecipe(Recipe):
    """A cell search (SPEC "Common"): the search space and the evaluation network."""

    # --- search space (bnas_tf.space.supernet.CellSpace)
    op_set: str | tuple[str, ...] = "DARTS_BINARY_OPS"
    search_cells: int = 6
    search_channels: int = 16
    nodes: int = 4
    search_reduction_cells: tuple[int, ...] | None = None  # None: DARTS rule (cells // 3, 2 * cells // 3)
    inter_cell_skip: bool = False
    # --- supernet training during the search
    search_binarization: str | None = (
        None  # the supernet's (a proxy search, e.g. W1/A32 for a W1/A1 net); None: binarization
    )
    search_learning_rate: float = 0.025
    search_momentum: float = 0.9
    search_weight_decay: float = 5e-4
    alpha_learning_rate: float = 3e-4
    partial_channels: int = 1
    # BatchNorm statistics over every replica's rows under `--strategy` (SyncBatchNormalization); False: each
    # replica's own, over batch / replicas rows of each path
    sync_batch_norm: bool = False
    # --- evaluation network (bnas_tf.build_network)
    cells: int = 20
    channels: int = 36
    reduction_cells: tuple[int, ...] | None = None
    auxiliary: bool = True
    auxiliary_weight: float = 0.4
    # --- baselines of `bnas-tf run` (bnas_tf.pipeline.baselines), retrained with the winner's schedule:
    # this many random genotypes of the space, plus stacked binary convs and P2's cell; 0: no baselines
    baselines: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.search_binarization is not None and self.search_binarization not in BINARIZATION_TAGS:
            raise ValueError(
                f"search_binarization must be one of {', '.join(BINARIZATION_TAGS)} or unset (the "
                f"retraining's binarization) (got {self.search_binarization!r})"
            )
        self._check_networks()

    def _check_networks(self):
        """The search space and the evaluation network: what CellSpace and build_network would refuse later."""
        try:  # one op name (``--set op_set=conv_3x3``) is a one-op set, refused below
            op_set = get_op_set((self.op_set,) if isinstance(self.op_set, str) and self.op_set in OPS else self.op_set)
        except ValueError as error:
            raise ValueError(f"op_set: {error}; with --set: op_set=NAME or op_set=op1,op2,...") from None
        if len(op_set) < 2:
            raise ValueError(f"op_set must have at least 2 ops to search among (got {list(op_set)})")
        for cells_field, reductions_field in (("search_cells", "search_reduction_cells"), ("cells", "reduction_cells")):
            cells, reductions = getattr(self, cells_field), getattr(self, reductions_field)
            if reductions is not None and (
                len(set(reductions)) != len(reductions) or any(not 0 <= r < cells for r in reductions)
            ):
                raise ValueError(
                    f"{reductions_field} must be distinct cell indices in 0..{cells - 1} ({cells_field}={cells}), "
                    f"got {list(reductions)}"
                )
        for channels_field in ("search_channels", "channels"):
            if getattr(self, channels_field) % 2 and not self.lce_friendly:
                raise ValueError(
                    f"{channels_field} must be even (got {getattr(self, channels_field)}): factorised reduce splits "
                    "the channels in two halves"
                )
        self.search_space(op_set=op_set, stem=self._stem())  # what is left: e.g. lce_friendly with non-binary ops

    def search_space(self, **changes) -> CellSpace:
        """The :class:`~bnas_tf.space.supernet.CellSpace` these settings search (``changes`` replace fields)."""
        settings = dict(
            op_set=self.op_set,
            cells=self.search_cells,
            channels=self.search_channels,
            nodes=self.nodes,
            reduction_cells=self.search_reduction_cells,
            inter_cell_skip=self.inter_cell_skip,
            lce_friendly=self.lce_friendly,
        )
        return CellSpace(**{**settings, **changes})

    def _stem(self) -> str:
        return getattr(self, "stem", "cifar")  # face recipes have ImageNet's stem; the others CIFAR's

    def check_images(self, height: int, width: int) -> None:
        stem_halvings = 3 if self._stem() == "imagenet" else 0
        for what, cells_field, reductions_field in (
            ("search network", "search_cells", "search_reduction_cells"),
            ("evaluation network", "cells", "reduction_cells"),
        ):
            reductions = getattr(self, reductions_field)
            if reductions is None:
                reductions = default_reduction_cells(getattr(self, cells_field))
            _check_halvings(height, width, what, len(reductions) + stem_halvings, f"fewer {reductions_field}")

    def search_binarization_config(self) -> Binarization:
        """The supernet's binarization: ``search_binarization`` (same scheme), else :meth:`binarization_config`."""
        return self.binarization_config(self.search_binarization)

    def deployed_network_settings(self) -> dict:
        settings = {"cells": self.cells, "channels": self.channels, "reduction_cells": self.reduction_cells}
        if self.search_binarization is not None:  # a proxy search costs the network `bnas-tf train` builds
            settings["binarization"] = self.binarization_config().get_config()
        return settings


@dataclasses.dataclass(frozen=True)
class PruningRecipe(CellRecipe):
    """SPEC P1 Algorithm 1 (bnas_tf.tuners.OperationPruning)."""

    strategy: ClassVar[str] = "operation_pruning"
    repetitions: int = 3
    warmup_epochs: int = 5
    warmup_weights_only: int = 3
    finetune_epochs: int = 1
    ucb: bool = False
    delta: float = 2.0


@dataclasses.dataclass(frozen=True)
class ChildParentRecipe(CellRecipe):
    """SPEC P4 Algorithm 1 (bnas_tf.tuners.ChildParent)."""

    strategy: ClassVar[str] = "child_parent"
    repetitions: int = 3
    beta: float = 2.0
    # P4's kernel-level CP loss (Eq. 3-4) in the child's search training and in the winner's retraining.
    # P4 gives no λ: 1e-3 weighs the class-centre term (a sum over the batch) below the cross-entropy at
    # the quick sizes; the kernel term has no weight in Eq. 3.
    kernel_loss: bool = True
    kernel_loss_lambda: float = 1e-3


@dataclasses.dataclass(frozen=True)
class DifferentiableRecipe(CellRecipe):
    """SPEC P2 (bnas_tf.tuners.Differentiable)."""

    strategy: ClassVar[str] = "differentiable"
    search_epochs: int = 50
    diversity_lambda: float = 1.0
    diversity_tau: float = 7.7
    gamma: float = 3.0

    def __post_init__(self):
        super().__post_init__()
        if self.gamma < 1:
            raise ValueError(
                f"gamma must be >= 1 (got {self.gamma}): larger gamma keeps fewer Zeroise edges (P2 Eq. 4)"
            )


@dataclasses.dataclass(frozen=True)
class EvolutionRecipe(Recipe):
    """SPEC P3 (bnas_tf.tuners.evolution.Evolution): width genes over a fixed backbone."""

    strategy: ClassVar[str] = "evolution"
    backbone: str = "vgg_small"
    population_size: int = 32
    generations: int = 50
    epochs_per_candidate: int = 10
    width_multiplier: float = 1.0
    flops_penalty: float = 4.0
    initial_weights: str | None = "uniform4x"
    initial_epochs: int | None = None  # epochs of the uniform-4x net; None: epochs_per_candidate
    search_learning_rate: float = 0.1
    search_momentum: float = 0.9

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; known backbones: {', '.join(BACKBONES)}")
        if self.initial_weights not in (None, "uniform4x"):
            raise ValueError(f"initial_weights must be uniform4x or none (got {self.initial_weights!r})")
        super().__post_init__()

    def check_images(self, height: int, width: int) -> None:
        _check_halvings(height, width, f"{self.backbone} backbone", BACKBONE_HALVINGS, "another backbone")


def _check_halvings(height: int, width: int, what: str, halvings: int, fewer: str) -> None:
    """``height x width`` images must survive ``halvings`` stride-2 steps (at least 1x1 after the last)."""
    if min(height, width) < 2**halvings:
        raise ValueError(
            f"{height}x{width} images are too small for the {what}'s {halvings} halvings of resolution (needs at "
            f"least {2**halvings}x{2**halvings}); use {fewer} or a larger image_size"
        )


#: Largest ``seed``: NumPy's generators take 32-bit seeds.
MAX_SEED = 2**32 - 1
#: Stride-2 steps of the width backbones at small inputs (VGG-small's and ResNet-18's three; build_width_network).
BACKBONE_HALVINGS = 3

_POSITIVE = {
    "image_size",
    "max_examples",
    "search_batch_size",
    "search_steps_per_epoch",
    "train_epochs",
    "train_batch_size",
    "train_steps_per_epoch",
    "train_learning_rate",
    "verify_samples",
    "search_cells",
    "search_channels",
    "nodes",
    "cells",
    "channels",
    "partial_channels",
    "repetitions",
    "search_epochs",
    "population_size",
    "generations",
    "epochs_per_candidate",
    "initial_epochs",
    "width_multiplier",
    "gamma",
    "search_learning_rate",
    "deploy_budget",
}
_NON_NEGATIVE = {
    "seed",
    "kernel_loss_lambda",
    "lr_min",
    "baselines",
    "train_momentum",
    "train_weight_decay",
    "lr_decay",
    "gradient_clip",
    "cutout",
    "search_momentum",
    "search_weight_decay",
    "alpha_learning_rate",
    "auxiliary_weight",
    "warmup_epochs",
    "warmup_weights_only",
    "finetune_epochs",
    "delta",
    "beta",
    "diversity_lambda",
    "diversity_tau",
    "flops_penalty",
    "deploy_penalty",
}


# --- --set key=value --------------------------------------------------------------
def parse_assignment(text: str) -> tuple[str, str]:
    """``"key=value"`` -> ``("key", "value")``."""
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set takes key=value, got {text!r} (e.g. --set train_epochs=5)")
    return key.strip(), value.strip()


def apply_overrides(recipe: Recipe, assignments) -> Recipe:
    """A copy of ``recipe`` with ``assignments`` (``["key=value", ...]`` or a dict) applied, values type-checked.

    Example: ``apply_overrides(recipe, ["train_epochs=5", "op_set=conv_3x3,identity"])``.
    """
    items = assignments.items() if isinstance(assignments, dict) else [parse_assignment(a) for a in assignments]
    hints = typing.get_type_hints(type(recipe))
    fields = {f.name for f in dataclasses.fields(recipe)}
    changes = {}
    for key, value in items:
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"unknown setting {key!r} for recipe {recipe.name!r}{hint} "
                f"(`bnas-tf recipes --show {recipe.name}` lists all {len(fields)} settings)"
            )
        changes[key] = _coerce(key, value, hints[key]) if isinstance(value, str) else _check(key, value, hints[key])
    return dataclasses.replace(recipe, **changes)


def _check(key, value, hint):
    """A Python value for a field: of the annotated type (ints pass as floats, lists as tuples), else TypeError."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        if option is type(None) and value is None:
            return None
        if typing.get_origin(option) is tuple and isinstance(value, (list, tuple)):
            return tuple(value)
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option in (int, str, bool) and isinstance(value, option) and (option is bool or not isinstance(value, bool)):
            return value
    raise TypeError(f"setting {key!r} takes {hint}, got {type(value).__name__} {value!r}")


def _coerce(key, text, hint):
    """Parse ``text`` as the field's annotated type; a ValueError says what was expected."""
    args = set(typing.get_args(hint))
    if type(None) in args:
        if text.lower() in _NONE:
            return None
        args.discard(type(None))
        hint = args.pop() if len(args) == 1 else typing.Union[tuple(args)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        # str | tuple[str, ...]: a comma makes a tuple, a single word stays a name (e.g. an op set)
        tuple_hint = next(a for a in typing.get_args(hint) if typing.get_origin(a) is tuple)
        return _coerce(key, text, tuple_hint) if "," in text else text
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return tuple(_scalar(key, p, item, f"a comma-separated list of {item.__name__}") for p in parts)
    return _scalar(key, text, hint, hint.__name__)


def _scalar(key, text, kind, expected):
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"setting {key!r} takes true or false, got {text!r}")
    if kind is str:
        return text
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"setting {key!r} takes {expected}, got {text!r}") from None


# --- what every quick profile shares: the embedded digits at CPU size -----------
#: Data and retraining of every ``quick`` profile: 16x16 digits, small batches, a few epochs
#: (measured on a 3-cell W1/A1 net: lr 0.2 and cutout 2 reach ~85% test accuracy in 15 epochs;
#: lr 0.05 with cutout 4 stays near 36% after 6.)
QUICK_DATA = dict(
    dataset="digits",
    search_batch_size=32,
    search_steps_per_epoch=20,
    train_batch_size=32,
    train_epochs=15,
    train_learning_rate=0.2,
    cutout=2,
    verify_samples=1000,
)
#: Cell search space and evaluation network of the quick cell profiles: 3 ops (so 2 pruning rounds,
#: one supernet trace each), 2 nodes (5 edges), 3 cells with one reduction, 8 / 16 channels; supernet lr 0.1
#: (at 0.025 the paths stay at chance after a 20-step epoch and the scores are noise).
QUICK_CELLS = dict(
    QUICK_DATA,
    search_learning_rate=0.1,
    op_set=("conv_3x3", "max_pool_3x3", "identity"),
    search_cells=3,
    search_channels=8,
    nodes=2,
    search_reduction_cells=(1,),
    cells=3,
    channels=16,
    reduction_cells=(1,),
    auxiliary=False,
)

"""Toy-size settings for the run tests: every recipe shrunk to seconds on 2 CPU cores."""

#: Shrinks any recipe's quick profile: 300 digits, 2 steps per search epoch, 1 short retraining epoch.
TOY_DATA = {
    "max_examples": 300,
    "search_steps_per_epoch": 2,
    "train_epochs": 1,
    "train_steps_per_epoch": 3,
    "verify_samples": 64,
}
#: Cell recipes: 2 ops (one pruning round, one supernet trace), 2 cells, 4 / 8 channels, one repetition.
TOY_CELLS = dict(TOY_DATA, search_cells=2, search_channels=4, cells=2, channels=8)
TOY = {
    "bnas_xnor": dict(TOY_CELLS, op_set="conv_3x3,identity", repetitions=1, warmup_epochs=1, finetune_epochs=0),
    "bnas_pcnn": dict(TOY_CELLS, op_set="conv_3x3,identity", repetitions=1, warmup_epochs=1, finetune_epochs=0),
    "bnas_1bit_ucb": dict(TOY_CELLS, op_set="conv_3x3,identity", repetitions=1),
    "cpnas": dict(TOY_CELLS, op_set="conv_3x3,identity", repetitions=1, nodes=2, baselines=0),
    "binary_darts": dict(TOY_CELLS, op_set="zero,conv_3x3", search_epochs=1),
    "evolution_vgg_small": dict(
        TOY_DATA, population_size=2, generations=1, epochs_per_candidate=1, width_multiplier=0.0625
    ),
    "bnas_face": dict(TOY_CELLS, op_set="conv_3x3,identity", repetitions=1, embedding_dim=16, generated_pairs=100),
}


def toy_overrides(name):
    """``["key=value", ...]`` that make recipe ``name``'s quick profile toy-sized (what --set takes)."""
    return [f"{key}={value}" for key, value in TOY[name].items()]

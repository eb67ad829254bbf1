"""``bnas-tf recipes [--show NAME [--profile quick|paper]]``: list the experiments, or one recipe's settings."""

from __future__ import annotations

from bnas_tf import recipes


def run(args) -> int:
    if args.show:
        recipe = recipes.get(args.show, args.profile)
        changed = recipes.differences(args.show)
        print(f"{args.show} ({args.profile} profile): {recipes.describe(args.show)}")
        print(f"strategy: {recipe.strategy}; * = the quick profile differs from the paper")
        for key, value in recipe.settings().items():
            mark = "*" if key in changed else " "
            print(f" {mark} {key} = {value}")
        return 0
    width = max(len(name) for name in recipes.names())
    for name in recipes.names():
        default = "  (default)" if name == recipes.DEFAULT_RECIPE else ""
        print(f"{name:<{width}}  {recipes.describe(name)}{default}")
    print(
        "\nrun one: bnas-tf run --recipe NAME [--profile quick|paper] [--set key=value]; "
        "settings: bnas-tf recipes --show NAME"
    )
    return 0

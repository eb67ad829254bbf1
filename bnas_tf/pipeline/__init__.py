"""The ``bnas-tf`` application: commands, run folders, reports, and the orchestration of search, training,
conversion and verification from a recipe. The only layer that imports tuners, convert and recipes."""

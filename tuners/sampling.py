"""The shared loop of SPEC P1 Algorithm 1 and P4 Algorithm 1 as a KerasTuner Oracle.

Per pruning round, on every edge: take the candidate ops (P1: the ⌈K/2⌉ with
the smallest α after a PC-DARTS warm-up; P1-UCB and P4: all remaining ops),
sample them ``repetitions`` (T) times *without replacement* -- each
repetition is a *group* of paths, and no two paths of a group share an op on
any edge -- score the ops from the paths' results and abandon the worst op
per edge; optionally run mixed-mode (PC-DARTS) epochs between rounds; stop
when one op per edge is left. Subclasses only say how a round's measurements
become per-op scores (:meth:`SamplingOracle.round_scores`).

A group has as many paths as ``half_paths`` says: P4 (False) samples every
candidate once per repetition; P1 (True) samples ⌈K/2⌉ paths of the K
remaining ops (Algorithm 1, line 6). After a warm-up that is every op of
O_smaller once; in the 1-bit search (O_smaller = O, no warm-up) each
repetition draws about half of an edge's ops, so ops are selected unequally
often and P1's UCB term (Eq. 10) can change which op is abandoned. A
candidate that no path of the round sampled has no measurement: it is scored
as an op outside O_smaller (P1 Eq. 8's s_larger), so a round without
evidence never abandons it.

One trial is one sampled path (its hyperparameters are the op of every
edge). A group is handed to one tuner as a whole (sub-ids ``<tuner>/slot<i>``)
so that the tuner trains its paths together in one graph. While the round
waits for running trials the oracle answers IDLE; it never scores a partial
round. Failed samples (NaN loss, exceptions: KerasTuner's FAILED status) are
left out of the means; an op with no valid measurement in a round gets the
lowest mean of its edge (it is the first to be abandoned). A raising group is
INVALID first and retried up to ``max_retries_per_trial`` times;
``max_consecutive_failed_trials`` counts failed groups, not paths. A round in
which every path failed has no valid measurement: it is neither scored nor
pruned, and the search stops with :class:`~bnas_tf.tuners.failures.SearchStopped`
(the cause, e.g. a loss that is not finite, and the fix); the round's groups are
dropped, so searching again in the same project samples the round anew while
its failed trials stay recorded.

All decisions are JSON state (``get_state``/``set_state``); the random draws
derive from (seed, round, repetition), so a resumed search samples the same. The
trained weights, and so the scores, repeat bit for bit only with deterministic
kernels on one thread (``bnas_tf.enable_determinism``).
"""

from __future__ import annotations

import json
import math
import os

import keras_tuner as kt
import numpy as np

from bnas_tf import arguments
from bnas_tf.files import atomic_write_json
from bnas_tf.space.supernet import KINDS, CellSpace
from bnas_tf.tuners import deployment as deployment_lib
from bnas_tf.tuners import failures
from bnas_tf.tuners import keras_tuner_internals as internals
from bnas_tf.tuners.keras_tuner_internals import TrialStatus, synchronized
from bnas_tf.tuners.state import AtomicOracleState

SLOT = "/slot"


def base_tuner_id(tuner_id: str) -> str:
    return tuner_id.split(SLOT)[0]


def edge_name(kind: str, edge: int) -> str:
    return f"{kind}_e{edge}"


class SamplingOracle(AtomicOracleState, kt.Oracle):
    """Sample without replacement, score, abandon the worst op per edge (SPEC P1, P4)."""

    objective_name = "val_accuracy"

    def __init__(
        self,
        space: CellSpace,
        *,
        repetitions: int = 3,
        warmup_epochs: int = 0,
        warmup_weights_only: int = 3,
        finetune_epochs: int = 0,
        halve_candidates: bool = False,
        half_paths: bool = False,
        seed: int | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        deployment=None,
        **kwargs,
    ):
        if not isinstance(space, CellSpace):
            raise TypeError(f"space must be a bnas_tf.space.supernet.CellSpace, got {type(space).__name__}")
        if space.num_ops < 2:
            raise ValueError(
                f"a search needs at least 2 ops per edge, the space has {space.num_ops}: {list(space.op_set)}"
            )
        for name, value, low in (
            ("repetitions", repetitions, 1),
            ("warmup_epochs", warmup_epochs, 0),
            ("finetune_epochs", finetune_epochs, 0),
            ("warmup_weights_only", warmup_weights_only, 0),
        ):
            arguments.count(name, value, low)
        deployment = deployment_lib.get(deployment)
        if deployment is not None and deployment.penalty:  # the paths' measurement is the penalised objective
            self.objective_name = deployment_lib.deployed_name(type(self).objective_name)
        self._check_seed(seed)
        super().__init__(
            objective=kt.Objective(self.objective_name, "max"),
            max_trials=None,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            **kwargs,
        )
        self._keep_seed(seed)
        self.deployment = deployment
        self.space = space
        self.repetitions = repetitions
        self.warmup_epochs = warmup_epochs
        self.warmup_weights_only = warmup_weights_only
        self.finetune_epochs = finetune_epochs
        self.halve_candidates = halve_candidates
        self.half_paths = half_paths
        for kind in KINDS:
            for edge in range(space.num_edges):
                self.hyperparameters.Choice(edge_name(kind, edge), list(space.op_set))
        self._requesting = None
        self._stopping = None  # the SearchStopped that end_trial raises once the state is saved
        self._reset_search_state()

    # --- search state ---------------------------------------------------------
    def _reset_search_state(self):
        k, edges = self.space.num_ops, self.space.num_edges
        self.phase = "warmup" if self.warmup_epochs else "sample"
        self.phase_epoch = 0
        self.round = 0
        self.remaining = {kind: [list(range(k)) for _ in range(edges)] for kind in KINDS}
        self.likelihood = {kind: [[0.0] * k for _ in range(edges)] for kind in KINDS}
        self.times_selected = {kind: [[0] * k for _ in range(edges)] for kind in KINDS}
        self.total_samples = 0
        self.alpha = None
        self.groups = {}
        self.next_repetition = 0
        self.candidates = None
        self.layout = None
        self.mixed_trial = None
        self.epochs_done = 0
        self.attempt = 0  # how often the current round was sampled anew after a round with no measurement
        self.log = []

    def _search_state(self) -> dict:
        return {
            name: getattr(self, name)
            for name in (
                "phase",
                "phase_epoch",
                "round",
                "remaining",
                "likelihood",
                "times_selected",
                "total_samples",
                "alpha",
                "groups",
                "next_repetition",
                "candidates",
                "layout",
                "mixed_trial",
                "epochs_done",
                "attempt",
                "log",
            )
        }

    def get_state(self):
        state = super().get_state()
        state["search"] = self._search_state()
        state["space"] = self.space.get_config()
        return state

    def set_state(self, state):
        super().set_state(state)
        if CellSpace.from_config(state["space"]) != self.space:
            raise ValueError("the saved search used a different cell space; pass the same space or overwrite=True")
        for name, value in state["search"].items():
            setattr(self, name, value)

    # --- planning -------------------------------------------------------------
    def planned_epochs(self) -> int:
        """Epochs of the whole search: warm-up, T per round, fine-tuning between rounds."""
        k = self.space.num_ops
        rounds = k - 1
        return self.warmup_epochs + rounds * self.repetitions + (rounds - 1) * self.finetune_epochs

    def _progress(self) -> float:
        return self.epochs_done / max(self.planned_epochs(), 1)

    def _round_candidates(self) -> dict:
        """Per edge, the ops sampled this round: O_smaller (smallest α, SPEC P1 step 2a) or all remaining."""
        out = {}
        for kind in KINDS:
            out[kind] = []
            for edge, remaining in enumerate(self.remaining[kind]):
                if self.halve_candidates and self.alpha is not None and len(remaining) > 1:
                    size = math.ceil(len(remaining) / 2)
                    alpha = self.alpha[kind][edge]
                    chosen = sorted(remaining, key=lambda op: (alpha[op], op))[:size]
                    out[kind].append(sorted(chosen))
                else:
                    out[kind].append(list(remaining))
        return out

    def _update_layout(self, needed: dict) -> dict:
        """The ops the tuner's graph holds per edge. A graph is kept (not retraced) while it holds every needed
        op and at least half its path slots are needed; otherwise it becomes the remaining ops. A pure function
        of the search history, so a resumed search builds the same graphs."""
        layout = self.layout
        keep = layout is not None and all(
            set(ops) <= set(layout[kind][edge]) and 2 * len(ops) >= len(layout[kind][edge])
            for kind in KINDS
            for edge, ops in enumerate(needed[kind])
        )
        if not keep:
            self.layout = {kind: [list(r) for r in self.remaining[kind]] for kind in KINDS}
        return self.layout

    def _group_size(self) -> int:
        """Paths of a repetition: ⌈K/2⌉ of the K remaining ops (``half_paths``, P1) or every candidate (P4);
        never more than the candidates, since no two paths of a group share an op."""
        candidates, remaining = len(self.candidates["normal"][0]), len(self.remaining["normal"][0])
        return min(candidates, math.ceil(remaining / 2)) if self.half_paths else candidates

    def _draws(self, rng, kind_index: int, edge: int, count: int, repetition: int, size: int) -> list:
        """Which of an edge's ``count`` candidates each of a repetition's ``size`` paths takes (path p: the p-th).

        Every candidate (``size == count``): a permutation drawn from the repetition's ``rng``. Fewer paths than
        candidates: the round walks one seeded permutation of the edge's candidates, ``size`` at a time from
        where the previous repetition stopped (wrapping round), so no op is drawn twice before every op was drawn
        once; the repetition's ``rng`` then shuffles which path takes which, so the paths' ops on different edges
        pair up anew each time. Everything derives from (seed, round, repetition, edge): a resumed search draws
        the same."""
        if size >= count:
            return rng.permutation(count).tolist()
        walk = np.random.default_rng([self.seed, self.round, kind_index, edge]).permutation(count)
        chosen = [int(walk[(repetition * size + path) % count]) for path in range(size)]
        return [int(k) for k in rng.permutation(chosen)]

    def _new_group(self, owner: str) -> str:
        if self.candidates is None:
            self.candidates = self._round_candidates()
            self._update_layout(self.candidates)
        repetition = self.next_repetition
        self.next_repetition += 1
        rng = np.random.default_rng([self.seed, self.round, repetition])
        size = self._group_size()
        permutations = {
            kind: [
                self._draws(rng, kind_index, edge, len(cands), repetition, size)
                for edge, cands in enumerate(self.candidates[kind])
            ]
            for kind_index, kind in enumerate(KINDS)
        }
        group_id = f"r{self.round}t{repetition}" + (f"a{self.attempt}" if self.attempt else "")
        self.groups[group_id] = {
            "owner": owner,
            "round": self.round,
            "repetition": repetition,
            "size": size,
            "permutations": permutations,
            "issued": {},
            "results": {},
        }
        return group_id

    def _path_values(self, group_id: str, path: int) -> dict:
        group = self.groups[group_id]
        values = {
            "phase": "sample",
            "round": group["round"],
            "repetition": group["repetition"],
            "group": group_id,
            "group_size": group["size"],
            "path": path,
            "progress": self._progress(),
            "layout": json.dumps(self.layout),
        }
        for kind in KINDS:
            for edge, cands in enumerate(self.candidates[kind]):
                values[edge_name(kind, edge)] = self.space.op_set[cands[group["permutations"][kind][edge][path]]]
        return values

    # --- KerasTuner interface ---------------------------------------------------
    @synchronized
    def create_trial(self, tuner_id):
        self._requesting = tuner_id
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.STOPPED:
            # a tuner asks with sub-ids <tuner>/slot<i> but is told to stop on slot0 only; KerasTuner's chief
            # serves until every id it has seen was told to stop
            base = base_tuner_id(tuner_id)
            self.tuner_ids = {t for t in self.tuner_ids if base_tuner_id(t) != base}
        return trial

    def populate_space(self, trial_id):
        if self.phase == "done":
            return {"status": TrialStatus.STOPPED, "values": None}
        if self.phase in ("warmup", "finetune"):
            if self.mixed_trial is not None:
                return self._idle()
            self.mixed_trial = trial_id
            weights_only = self.phase == "warmup" and self.phase_epoch < self.warmup_weights_only
            return {
                "status": TrialStatus.RUNNING,
                "values": {
                    "phase": self.phase,
                    "epoch": self.phase_epoch,
                    "train_alpha": not weights_only,
                    "progress": self._progress(),
                    "remaining": json.dumps(self.remaining),
                    "layout": json.dumps(self._update_layout(self.remaining)),
                },
            }
        owner = base_tuner_id(self._requesting or "tuner0")
        group_id = self._open_group(owner)
        if group_id is None:
            if self.next_repetition >= self.repetitions:
                return self._idle()
            group_id = self._new_group(owner)
        group = self.groups[group_id]
        path = len(group["issued"])
        group["issued"][trial_id] = path
        return {"status": TrialStatus.RUNNING, "values": self._path_values(group_id, path)}

    def _open_group(self, owner):
        """A group of this round with paths not handed out yet: this tuner's own, else an abandoned one."""
        running_owners = {base_tuner_id(t) for t in self.ongoing_trials}
        for claim_foreign in (False, True):
            for group_id, group in self.groups.items():
                if group["round"] != self.round or len(group["issued"]) >= group["size"]:
                    continue
                if group["owner"] == owner or (claim_foreign and group["owner"] not in running_owners):
                    group["owner"] = owner
                    return group_id
        return None

    def _idle(self):
        if not self.ongoing_trials and not internals.retry_queue(self):
            raise RuntimeError(
                f"search state is stuck in phase {self.phase!r} with nothing running; "
                "this is a bug: please report it with the oracle.json file"
            )
        return {"status": TrialStatus.IDLE, "values": None}

    @synchronized
    def end_trial(self, trial):
        self._stopping = None
        super().end_trial(trial)
        trial = self.trials[trial.trial_id]
        if trial.trial_id in internals.retry_queue(self):
            return self.save()  # INVALID with retries left: it will run again
        values = trial.hyperparameters.values
        if values.get("phase") in ("warmup", "finetune"):
            self._end_mixed(trial)
        elif values.get("phase") == "sample":
            self._end_sample(trial)
        self.save()
        if self._stopping is not None:  # raised only now, with the trial's end and the state on disk
            stopping, self._stopping = self._stopping, None
            raise stopping

    def _check_consecutive_failures(self):
        """KerasTuner's limit, counted in groups: a group's paths train together and fail together, so a
        failed group (or mixed-mode epoch) is one failure, however many paths it has. Only the latest failures
        count (a search resumed after a stop goes on), and the stop waits for :meth:`end_trial` to save."""
        failed, last, members, whole = [], None, 0, False
        rejected = {}  # per group: paths the deployment budget rejected (not failures; the rest is the group)
        for trial in self.trials.values():
            if deployment_lib.is_rejected(trial):
                group = trial.hyperparameters.values.get("group")
                rejected[group] = rejected.get(group, 0) + 1
        for trial_id in internals.ended_trial_ids(self):
            trial = self.trials[trial_id]
            if deployment_lib.is_rejected(trial):
                continue
            if trial.status != TrialStatus.FAILED:
                failed, last = [], None
                continue
            values = trial.hyperparameters.values
            unit = values.get("group", trial_id)
            if unit != last:
                last, members = unit, 0
                failed.append([])
            members += 1
            failed[-1].append(trial)
            # stop once the whole group (less its rejected paths) is marked failed
            whole = members >= values.get("group_size", 1) - rejected.get(values.get("group"), 0)
        if self.max_consecutive_failed_trials and len(failed) >= self.max_consecutive_failed_trials and whole:
            self._stopping = failures.stop(
                self,
                f"{len(failed)} consecutive groups of sampled paths failed "
                f"(max_consecutive_failed_trials={self.max_consecutive_failed_trials})",
                failed[-1],
                self.deployment,
            )

    def _end_mixed(self, trial):
        if trial.status == TrialStatus.COMPLETED:
            self.alpha = self._alpha_from(trial)
        self.mixed_trial = None
        self.phase_epoch += 1
        self.epochs_done += 1
        total = self.warmup_epochs if self.phase == "warmup" else self.finetune_epochs
        if self.phase_epoch >= total:
            self.phase, self.phase_epoch = "sample", 0

    def _alpha_from(self, trial):
        alpha = {kind: [[0.0] * self.space.num_ops for _ in range(self.space.num_edges)] for kind in KINDS}
        for kind in KINDS:
            for edge in range(self.space.num_edges):
                for op in range(self.space.num_ops):
                    name = f"alpha_{kind}_{edge}_{op}"
                    if trial.metrics.exists(name):
                        alpha[kind][edge][op] = float(trial.metrics.get_last_value(name))
        return alpha

    def _end_sample(self, trial):
        group = self.groups.get(trial.hyperparameters.values["group"])
        if group is None:
            return
        ok = trial.status == TrialStatus.COMPLETED
        group["results"][trial.trial_id] = self.sample_value(trial) if ok else None
        if len(group["results"]) == group["size"]:
            self.epochs_done += 1
        round_groups = [g for g in self.groups.values() if g["round"] == self.round]
        if len(round_groups) == self.repetitions and all(len(g["results"]) == g["size"] for g in round_groups):
            self._finish_round(round_groups)

    def sample_value(self, trial) -> float:
        """The measurement a sampled path gives each of its ops (its objective)."""
        return float(trial.metrics.get_last_value(self.objective_name))

    # --- scoring and pruning ----------------------------------------------------
    def _finish_round(self, round_groups):
        measured = [v for g in round_groups for v in g["results"].values() if v is not None and np.isfinite(v)]
        if not measured:
            return self._drop_round(round_groups)
        record = {"round": self.round, "edges": {}}
        for kind in KINDS:
            for edge, cands in enumerate(self.candidates[kind]):
                measurements, sampled = {op: [] for op in cands}, {}
                for group in round_groups:
                    for trial_id, path in group["issued"].items():
                        value = group["results"].get(trial_id)
                        op = cands[group["permutations"][kind][edge][path]]
                        self.times_selected[kind][edge][op] += 1
                        sampled[op] = sampled.get(op, 0) + 1
                        if value is not None and np.isfinite(value):
                            measurements[op].append(value)
                means = {op: float(np.mean(v)) for op, v in measurements.items() if v}
                worst = min(means.values()) if means else 0.0  # a sampled op whose paths all failed
                remaining = self.remaining[kind][edge]
                mean_values = np.array([means.get(op, worst) if op in sampled else np.nan for op in remaining])
                in_sampled = np.array([op in sampled for op in remaining])
                scores = self.round_scores(kind, edge, remaining, mean_values, in_sampled)
                score_names = {self.space.op_set[op]: float(score) for op, score in zip(remaining, scores)}
                for op, score in zip(remaining, scores):
                    self.likelihood[kind][edge][op] = float(score)
                abandoned = None
                if len(remaining) > 1:
                    # SPEC P1 Eq. 11 over the ops this round may abandon (a round always samples one); ties -> first
                    droppable = np.where(self.kept_this_round(kind, edge, remaining), np.inf, scores)
                    abandoned = remaining[int(np.argmin(droppable))]
                    remaining.remove(abandoned)
                record["edges"][edge_name(kind, edge)] = {
                    "candidates": [self.space.op_set[op] for op in cands],
                    "sampled": {self.space.op_set[op]: sampled[op] for op in sorted(sampled)},
                    "mean": {self.space.op_set[op]: m for op, m in means.items()},
                    "score": score_names,
                    "abandoned": None if abandoned is None else self.space.op_set[abandoned],
                    "remaining": [self.space.op_set[op] for op in remaining],
                }
        self.total_samples += sum(g["size"] for g in round_groups)
        self.log.append(record)
        self.round += 1
        self.attempt = 0
        self.next_repetition = 0
        self.candidates = None
        self.groups = {gid: g for gid, g in self.groups.items() if g["round"] >= self.round}
        if all(len(r) == 1 for kind in KINDS for r in self.remaining[kind]):
            self.phase = "done"
        elif self.finetune_epochs:
            self.phase, self.phase_epoch = "finetune", 0
        self._write_log()

    def _drop_round(self, round_groups):
        """A round in which every path failed: nothing is scored or pruned and the search stops; the round's
        groups are dropped (their trials stay FAILED), so searching again samples the round anew."""
        trials = [self.trials[trial_id] for g in round_groups for trial_id in g["issued"]]
        self._stopping = self._stopping or failures.stop(  # a consecutive-failure stop names its limit first
            self,
            f"every sampled path of round {self.round} failed ({len(trials)} path{'s' * (len(trials) != 1)})",
            trials,
            self.deployment,
        )
        self.groups = {gid: g for gid, g in self.groups.items() if g["round"] != self.round}
        self.epochs_done -= len(round_groups)
        self.next_repetition = 0
        self.candidates = None
        self.attempt += 1

    def round_scores(self, kind, edge, remaining, mean_values, in_sampled) -> np.ndarray:
        """Scores of the edge's remaining ops after a round; the lowest is abandoned. ``mean_values``: each op's
        mean measurement this round (NaN for ops no path sampled); ``in_sampled``: the ops some path sampled."""
        raise NotImplementedError

    def kept_this_round(self, kind, edge, remaining) -> np.ndarray:
        """Ops of ``remaining`` that this round may not abandon, as a boolean mask (default: none)."""
        return np.zeros(len(remaining), dtype=bool)

    def _write_log(self):
        if internals.oracle_directory(self):
            atomic_write_json(
                os.path.join(internals.project_dir(self), "search_log.json"),
                {"space": self.space.get_config(), "rounds": self.log},
            )

    # --- results ------------------------------------------------------------------
    def best_choice(self) -> dict:
        """Op index per edge: the last one left, or while searching the best-scored remaining op."""
        choice = {}
        for kind in KINDS:
            choice[kind] = []
            for edge, remaining in enumerate(self.remaining[kind]):
                scores = self.likelihood[kind][edge]
                choice[kind].append(max(remaining, key=lambda op: (scores[op], -op)))
        return choice

    def get_best_trials(self, num_trials=1):
        trials = [
            t
            for t in self.trials.values()
            if t.hyperparameters.values.get("phase") == "sample" and t.status == TrialStatus.COMPLETED
        ]
        return sorted(trials, key=lambda t: t.score, reverse=True)[:num_trials]

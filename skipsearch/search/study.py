"""The study runner: the part of a search every backend shares.

The Optuna study (in its storage) is the source of truth. The driver asks for a trial,
turns the sampled point (or a seed preset) into an ArchSpec, and computes the cheap
figures from the spec (skip memory, params, MACs, ...). An invalid spec is recorded FAIL,
one that violates a constraint PRUNED as infeasible, and an architecture the study has
already trained COMPLETE with that trial's values: none of them is trained. Only the rest
goes to a backend, which calls evaluate() and hands the result back here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..costs.profile import profile
from ..errors import SpecError
from ..objectives import OBJECTIVES
from ..presets import preset
from ..spec import ArchSpec
from .config import StudyConfig
from .identity import check_identity, stored_identity

INTERRUPTED = "interrupted"  # reason of trials cut short by a stopped or killed driver


def make_sampler(cfg: StudyConfig):
    import optuna

    kind, opts = cfg.sampler["type"], {k: v for k, v in cfg.sampler.items() if k != "type"}
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=cfg.seed, population_size=int(opts.get("population", 8)))
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=cfg.seed, multivariate=True, group=True)
    if kind == "gp":
        return optuna.samplers.GPSampler(seed=cfg.seed)
    return optuna.samplers.RandomSampler(seed=cfg.seed)


def open_study(cfg: StudyConfig, create: bool = True):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stored = stored_identity(cfg.storage, cfg.name)  # read-only: nothing is written before this passes
    if stored is not None:
        check_identity(cfg.path, cfg.name, stored, cfg.identity())
    cfg.out.mkdir(parents=True, exist_ok=True)
    storage = (
        optuna.storages.RDBStorage(cfg.storage, engine_kwargs={"connect_args": {"timeout": 60}})
        if cfg.storage.startswith("sqlite")
        else cfg.storage
    )
    if not create:
        return optuna.load_study(study_name=cfg.name, storage=storage)
    study = optuna.create_study(
        study_name=cfg.name,
        storage=storage,
        directions=[o.direction for o in cfg.objectives],
        sampler=make_sampler(cfg),
        load_if_exists=True,
    )
    if tuple(study.directions) != tuple(optuna.study.StudyDirection[o.direction.upper()] for o in cfg.objectives):
        from ..errors import UserError

        raise UserError(
            f"{cfg.path}: objectives: the stored study {cfg.name!r} has other objectives; use a new name or out folder"
        )
    if "identity" not in study.user_attrs:
        study.set_user_attr("identity", cfg.identity())
    study.set_user_attr(
        "config",
        {
            "task": cfg.task_name,
            "task_options": cfg.task_options,
            "space": cfg.space.name,
            "objectives": [[o.name, o.direction] for o in cfg.objectives],
            "constraints": [[c.objective, c.low, c.high] for c in cfg.constraints],
            "reference_input": list(cfg.reference_input),
            "budget": cfg.budget.to_dict(),
        },
    )
    return study


@dataclass
class Prepared:
    """A trial that needs training."""

    trial: Any  # optuna.Trial
    spec: ArchSpec
    costs: dict[str, Any]

    @property
    def number(self) -> int:
        return self.trial.number


class Runner:
    def __init__(self, cfg: StudyConfig) -> None:
        import optuna

        self.cfg = cfg
        self.task = cfg.make_task()
        self.study = open_study(cfg)
        self.states = optuna.trial.TrialState
        self.recovered = self.recover()

    # -- bookkeeping ---------------------------------------------------------------
    def recover(self) -> int:
        """Trials left RUNNING by a driver that was killed: FAIL, reason 'interrupted'.
        They do not count towards n_trials, so a re-run reaches it."""
        storage, n = self.study._storage, 0
        for t in self.study.get_trials(deepcopy=False, states=(self.states.RUNNING, self.states.WAITING)):
            storage.set_trial_user_attr(t._trial_id, "failure", INTERRUPTED)
            storage.set_trial_state_values(t._trial_id, self.states.FAIL)
            n += 1
        return n

    def finished(self) -> list:
        done = (self.states.COMPLETE, self.states.PRUNED, self.states.FAIL)
        return [t for t in self.study.get_trials(deepcopy=False, states=done) if t.user_attrs.get("failure") != INTERRUPTED]

    def remaining(self, running: int = 0) -> int:
        return self.cfg.n_trials - len(self.finished()) - running

    def _completed_by_arch(self) -> dict[str, Any]:
        return {
            t.user_attrs.get("arch_id"): t
            for t in self.study.get_trials(deepcopy=False, states=(self.states.COMPLETE,))
            if t.user_attrs.get("duplicate_of") is None
        }

    def _pending_presets(self) -> list[str]:
        started = {t.user_attrs.get("preset") for t in self.study.get_trials(deepcopy=False)}
        return [p for p in self.cfg.seed_presets if p not in started]

    def trial_dir(self, number: int, arch_id: str) -> Path:
        return self.cfg.out / "trials" / f"{number:05d}-{arch_id}"

    # -- asking ----------------------------------------------------------------------
    def next_trial(self, running: int = 0) -> Prepared | None:
        """The next trial that needs training, recording the ones that do not; None when
        the study has all its trials (counting those running)."""
        while self.remaining(running) > 0:
            prepared = self._ask()
            if prepared is not None:
                return prepared
        return None

    def _ask(self) -> Prepared | None:
        trial = self.study.ask()
        pending = self._pending_presets()
        try:
            if pending:
                trial.set_user_attr("preset", pending[0])
                spec = self.task.adapt(preset(pending[0]))
            else:
                spec = self.cfg.space.to_spec(self.cfg.space.suggest(trial), self.task)
        except SpecError as err:
            trial.set_user_attr("failure", f"invalid spec: {err}")
            self.study.tell(trial, state=self.states.FAIL)
            return None
        costs = self.cheap_costs(spec)
        for key in ("spec", "arch_id", "summary", "skip", "block"):
            trial.set_user_attr(key, costs.pop(key) if key in costs else getattr(spec, key, None))
        for key, value in costs.items():
            trial.set_user_attr(key, value)
        violated = [c for c in self.cfg.constraints if c.violation(costs[c.objective]) > 0]
        if violated:
            c = violated[0]
            above = c.high is not None and costs[c.objective] > c.high
            bound = f"<= {_human(c.objective, c.high)}" if above else f">= {_human(c.objective, c.low)}"
            trial.set_user_attr("infeasible", f"{c.objective} = {_human(c.objective, costs[c.objective])}, needs {bound}")
            self.study.tell(trial, state=self.states.PRUNED)
            return None
        earlier = self._completed_by_arch().get(spec.arch_id)
        if earlier is not None:
            trial.set_user_attr("duplicate_of", earlier.number)
            for key, value in earlier.user_attrs.items():
                if key not in trial.user_attrs and key not in ("ray_trial_id",):
                    trial.set_user_attr(key, value)
            self.study.tell(trial, earlier.values)
            return None
        return Prepared(trial, spec, costs)

    def cheap_costs(self, spec: ArchSpec) -> dict[str, Any]:
        """Figures known from the spec alone, at the study's reference input size."""
        prof = profile(spec, self.cfg.reference_input)
        costs = {n: o.compute(prof) for n, o in OBJECTIVES.items() if o.when == "spec"}
        costs["skip_timeline"] = [s.skip_bytes for s in prof.timeline]
        costs["skip_levels"] = prof.peak_stage.levels
        costs["m_e1_bytes"] = prof.m_e1_bytes
        costs.update(
            spec=spec.to_json(indent=None),
            arch_id=spec.arch_id,
            summary=spec.summary(),
            skip=spec.skip.type,
            block=spec.block.type,
        )
        return costs

    # -- telling ---------------------------------------------------------------------
    def complete(self, p: Prepared, result: dict[str, Any], ray_trial_id: str | None = None) -> None:
        for key, value in result.items():
            if isinstance(value, int | float | str) or value is None:
                p.trial.set_user_attr(key, value)
        if ray_trial_id:
            p.trial.set_user_attr("ray_trial_id", ray_trial_id)
        figures = {**p.costs, **result}
        values = [float(figures[o.name]) for o in self.cfg.objectives]
        if not all(math.isfinite(v) for v in values):
            return self.fail(p, f"non-finite objective values {values}", ray_trial_id)
        self.study.tell(p.trial, values)

    def fail(self, p: Prepared, reason: str, ray_trial_id: str | None = None) -> None:
        p.trial.set_user_attr("failure", reason[:2000])
        if ray_trial_id:
            p.trial.set_user_attr("ray_trial_id", ray_trial_id)
        self.study.tell(p.trial, state=self.states.FAIL)

    def interrupt(self, p: Prepared) -> None:
        self.fail(p, INTERRUPTED)

    # -- progress ----------------------------------------------------------------------
    def status(self, running: int = 0) -> str:
        trials = self.finished()
        done = sum(t.state == self.states.COMPLETE for t in trials)
        failed = sum(t.state == self.states.FAIL for t in trials)
        infeasible = sum(t.state == self.states.PRUNED for t in trials)
        front = self.study.best_trials if done else []
        parts = [
            f"trials {len(trials)}/{self.cfg.n_trials}: {done} complete, {running} running, "
            f"{failed} failed, {infeasible} infeasible",
            f"front {len(front)}",
        ]
        for i, o in enumerate(self.cfg.objectives):
            if front:
                pick = max if o.direction == "maximize" else min
                parts.append(
                    f"{'best' if o.direction == 'maximize' else 'min'} {o.name} {_fmt(pick(t.values[i] for t in front))}"
                )
        return " | ".join(parts)


def _human(name: str, v: float) -> str:
    return f"{v / 2**20:.4g} MiB" if name.endswith("_bytes") else f"{v:.4g}"


def _fmt(v: float) -> str:
    return f"{v / 2**20:.3g} MiB" if v >= 2**16 and float(v).is_integer() else f"{v:.4g}"


def trial_config(p: Prepared, runner: Runner) -> dict[str, Any]:
    """What a worker needs to train one trial (JSON-friendly, for Ray)."""
    cfg = runner.cfg
    return {
        "spec": p.spec.to_json(indent=None),
        "task": cfg.task_name,
        "task_options": cfg.task_options,
        "budget": cfg.budget.to_dict(),
        "out": str(runner.trial_dir(p.number, p.spec.arch_id)),
        "number": p.number,
    }


def run_trial(config: dict[str, Any], task=None) -> dict[str, Any]:
    """Train one trial from its config; never raises: failures come back as {'failure': reason}."""
    from ..tasks import make_task
    from ..train import Budget, evaluate

    start = time.perf_counter()
    try:
        budget = dict(config["budget"])
        budget["size"] = tuple(budget["size"])
        if budget.get("betas"):
            budget["betas"] = tuple(budget["betas"])
        task = task or make_task(config["task"], **config["task_options"])
        result = evaluate(ArchSpec.from_json(config["spec"]), task, Budget(**budget), out=config["out"])
    except Exception as err:  # recorded with its reason; the study goes on
        return {"failure": _reason(err), "wall_s": time.perf_counter() - start}
    result["wall_s"] = time.perf_counter() - start
    return result


def _reason(err: BaseException) -> str:
    name = type(err).__name__
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if "out of memory" in text.lower() or isinstance(err, MemoryError):
        return f"out of memory ({name}: {text})"
    return f"{name}: {text}" if text else name

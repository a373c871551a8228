"""Opening a stored study: its sampler, the identity check, the configuration it records.

Nothing is written before the stored study's identity (objectives, task, space
dimensions) has been compared with the study file's, read-only; the sampler is built
before the output folder is made, so a sampler that cannot be built leaves nothing behind.
A database server is first reached by that read-only look-up: one it cannot reach (or
that refuses the login) stops the run there, with one line naming the host and port.

The objective names are stored as Optuna's metric names, so other tools (optuna-dashboard,
`study.trials_dataframe()`, Optuna's plots) show them; a study made without them gets them
when it is opened again.
"""

from __future__ import annotations

import warnings

from ..errors import UserError
from . import attrs as A
from .config import StudyConfig
from .identity import check_identity, identity_from_attrs, stored_identity
from .storage import is_server_url, make_storage, study_attrs, write_pointer


def make_sampler(cfg: StudyConfig):
    """The study's sampler; with schedule: sync wrapped so that a slot's proposal depends on
    the slot alone (sampling.py)."""
    if cfg.schedule == "sync":
        from .sampling import SlotSampler

        return SlotSampler(lambda seed: _sampler(cfg, seed), cfg.seed)
    return _sampler(cfg, cfg.seed)


def _sampler(cfg: StudyConfig, seed: int):
    import optuna

    kind, opts = cfg.sampler["type"], {k: v for k, v in cfg.sampler.items() if k != "type"}
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=int(opts.get("population", 8)))
    startup = {"n_startup_trials": int(opts["n_startup_trials"])} if "n_startup_trials" in opts else {}
    if kind == "tpe":
        # `group` (a joint model per set of conditional dimensions) is marked experimental:
        # Optuna's notice of it would be the first line of every run with the default sampler
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, **startup)
    if kind == "gp":
        # conditional dimensions (CMRF's n, MSIAM's target) are sampled independently by
        # design: Optuna's warning about it, once per trial, would bury the progress lines
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False, **startup)
    return optuna.samplers.RandomSampler(seed=seed)


def _stored_identity(cfg: StudyConfig):
    """The stored study's identity (None: no such study), read without writing; a database
    server is read with plain SELECTs, so a database it cannot reach stops the run here."""
    if not is_server_url(cfg.storage):
        return stored_identity(cfg.storage, cfg.name)
    try:
        attrs = study_attrs(cfg.storage, cfg.name)
    except UserError as err:
        raise UserError(f"{cfg.path}: storage: {err.message}") from None
    return None if attrs is None else identity_from_attrs(attrs)


def open_study(cfg: StudyConfig, create: bool = True):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stored = _stored_identity(cfg)  # read-only: nothing is written before this passes
    if stored is not None:
        check_identity(cfg.path, cfg.name, stored, cfg.identity())
    sampler = make_sampler(cfg)  # before anything is created: a sampler that cannot be built leaves no study.db
    if cfg.storage != "memory://":
        cfg.out.mkdir(parents=True, exist_ok=True)
        write_pointer(cfg.out, cfg.storage)  # a study kept elsewhere than out/study.db: results and dashboard find it
    storage = make_storage(cfg.storage)
    if not create:
        return optuna.load_study(study_name=cfg.name, storage=storage)
    study = optuna.create_study(
        study_name=cfg.name,
        storage=storage,
        directions=[o.direction for o in cfg.objectives],
        sampler=sampler,
        load_if_exists=True,
    )
    if tuple(study.directions) != tuple(optuna.study.StudyDirection[o.direction.upper()] for o in cfg.objectives):
        raise UserError(
            f"{cfg.path}: objectives: the stored study {cfg.name!r} has other objectives; use a new name or out folder"
        )
    names = [o.name for o in cfg.objectives]
    if study.metric_names != names:  # at creation, and for a study made before skipsearch stored them
        with warnings.catch_warnings():  # set_metric_names is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    if A.IDENTITY not in study.user_attrs:
        study.set_user_attr(A.IDENTITY, cfg.identity())
    study.set_user_attr(
        A.CONFIG,
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

"""Every attribute skipsearch stores with a trial or a study, named once, with typed readers.

Optuna keeps a trial's and a study's user attributes as JSON values under string keys. The
keys are named here and nowhere else; the driver writes them, and everything that reads a
stored study (results, dashboard, model card, export, the schedule on resume) reads them
through the functions below, which accept a trial (anything with `user_attrs`) or its
attribute dict and return typed values, None where a trial has no such attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# -- trial attributes, written by the driver -----------------------------------------------
SPEC = "spec"  # the ArchSpec as JSON
ARCH_ID = "arch_id"  # the spec's identity: trials with the same one are the same network
SUMMARY = "summary"  # one line describing the network
SKIP = "skip"  # the skip design's short name
BLOCK = "block"  # the block family's short name
SKIP_TIMELINE = "skip_timeline"  # skip bytes held after each stage of a forward pass
SKIP_LEVELS = "skip_levels"  # skip bytes held per level at the peak
M_E1_BYTES = "m_e1_bytes"  # the first encoder level's output, the unit of skip memory
PRESET = "preset"  # the seed preset the trial evaluates
DRIVER = "driver"  # the driver that asked the trial (host:pid:id)
SLOT = "slot"  # schedule: sync: the trial's place in the schedule
ATTEMPT = "attempt"  # schedule: sync: how often its slot had been asked before
GPU_SHARE = "gpu_share"  # gpus: auto: the share of a GPU the trial asked for
FAILURE = "failure"  # why a FAIL trial failed
INFEASIBLE = "infeasible"  # which constraint a PRUNED trial violates (it was not trained)
DUPLICATE_OF = "duplicate_of"  # the trial whose result this one took (the same architecture)
WAITING_FOR = "waiting_for"  # the running trial a duplicate waits for
RUNGS = "rungs"  # {step: {metric: value}} at each rung the trial reached
CURVE = "curve"  # [[step, primary metric], ...]
RUNG = "rung"  # the index of the rung where fidelity stopped the trial
STEPS = "steps"  # training steps taken
RAY_TRIAL_ID = "ray_trial_id"  # the Ray Tune trial that trained it
# -- trial attributes, from the worker's result --------------------------------------------
WEIGHTS = "weights"  # the trained weights' file
WALL_S = "wall_s"  # seconds the worker spent on the trial
STOPPED_AT = "stopped_at"  # the step of the rung where fidelity stopped it (a result key)

OWN = (RAY_TRIAL_ID, DRIVER, WAITING_FOR, PRESET)  # a duplicate does not take these over
STRUCTURED = (SPEC, SKIP_TIMELINE, SKIP_LEVELS)  # kept out of the flat results table

# -- failure reasons that do not count towards n_trials ------------------------------------
INTERRUPTED = "interrupted"  # a trial cut short by a stopped or killed driver
SURPLUS = "not needed: the study already had its trials (another driver asked at the same time)"
UNCOUNTED = (INTERRUPTED, SURPLUS)

# -- study attributes ----------------------------------------------------------------------
CONFIG = "config"  # the study file's settings, as run
IDENTITY = "identity"  # what a resumed run must match (identity.py)
FRONT_CONFIDENCE = "front_confidence"  # {trial number: bootstrap share on the front of the means}
REPEATS = "repeats"  # studies before one key per run: {trial number: {"seeds", "values"}}
RUN_PREFIX = "repeat:"  # repeat:<trial number>:<seed index> -> {"seed", "values" | "failure"}
CLAIM_PREFIX = "repeat-claim:"  # repeat-claim:<number>:<index> -> the driver training that run
DRIVER_PREFIX = "driver:"  # driver:<id> -> time of the driver's last beat
OWNER = "schedule:driver"  # the driver running a schedule: sync study
ROUND_PREFIX = "racing:round:"  # racing:round:<R> -> [[trial number, seed index], ...]
RACED = "racing:done"  # racing has ended: {"rounds": R, "runs": N}


def of(t: Any) -> Mapping[str, Any]:
    """A trial's attributes (a trial, a FrozenTrial or the dict itself)."""
    return t if isinstance(t, Mapping) else t.user_attrs


def _text(t: Any, key: str) -> str | None:
    value = of(t).get(key)
    return value if isinstance(value, str) else None


def _int(t: Any, key: str) -> int | None:
    value = of(t).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def failure(t: Any) -> str | None:
    return _text(t, FAILURE)


def infeasible(t: Any) -> str | None:
    return _text(t, INFEASIBLE)


def preset(t: Any) -> str | None:
    return _text(t, PRESET)


def arch_id(t: Any) -> str | None:
    return _text(t, ARCH_ID)


def summary(t: Any) -> str:
    return _text(t, SUMMARY) or ""


def driver(t: Any) -> str | None:
    return _text(t, DRIVER)


def weights(t: Any) -> str | None:
    return _text(t, WEIGHTS)


def spec_json(t: Any) -> str | None:
    return _text(t, SPEC)


def spec(t: Any):
    """The trial's ArchSpec (SpecError when it has none or it does not parse)."""
    from ..spec import ArchSpec

    return ArchSpec.from_json(spec_json(t) or "")


def duplicate_of(t: Any) -> int | None:
    return _int(t, DUPLICATE_OF)


def waiting_for(t: Any) -> int | None:
    return _int(t, WAITING_FOR)


def slot(t: Any) -> int | None:
    return _int(t, SLOT)


def attempt(t: Any) -> int:
    return _int(t, ATTEMPT) or 0


def rungs(t: Any) -> dict[int, dict[str, Any]]:
    """{step: {metric: value}} at each rung the trial reached, by step."""
    stored = of(t).get(RUNGS) or {}
    return {int(step): dict(metrics) for step, metrics in sorted(stored.items(), key=lambda kv: int(kv[0]))}


def curve(t: Any) -> list[list[float]]:
    return [list(point) for point in of(t).get(CURVE) or []]


def skip_timeline(t: Any) -> list[int]:
    return [int(b) for b in of(t).get(SKIP_TIMELINE) or []]


def skip_levels(t: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in (of(t).get(SKIP_LEVELS) or {}).items()}


def m_e1_bytes(t: Any) -> int | None:
    return _int(t, M_E1_BYTES)


def counted(t: Any) -> bool:
    """Whether the trial counts towards n_trials (not interrupted, not surplus)."""
    return failure(t) not in UNCOUNTED


def repeated(t: Any) -> bool:
    """A trial that took (or waits for) another trial's result: the same architecture."""
    return DUPLICATE_OF in of(t) or WAITING_FOR in of(t)


def trained(t: Any) -> bool:
    """A trial whose own training gave its values: not a duplicate, not infeasible."""
    return duplicate_of(t) is None and INFEASIBLE not in of(t)


def front_confidence(study_attrs: Mapping[str, Any]) -> dict[str, float]:
    """{trial number as text: bootstrap share on the front of the means} of a study."""
    return dict(study_attrs.get(FRONT_CONFIDENCE) or {})


def run_key(number: int, index: int) -> str:
    return f"{RUN_PREFIX}{number}:{index}"


def claim_key(number: int, index: int) -> str:
    return f"{CLAIM_PREFIX}{number}:{index}"


def round_key(number: int) -> str:
    return f"{ROUND_PREFIX}{number}"

"""A study's whole record in a form two runs can be compared by: per slot (a trial's place
in a deterministic study), never by trial number, driver or timing."""

from __future__ import annotations

from pathlib import Path

import optuna

from skipsearch.search.config import load_study

TIMING = {
    "driver",
    "train_time_s",
    "wall_s",
    "images_per_s",
    "ray_trial_id",
    "weights",
    "waiting_for",
    "slot",
    "attempt",
    "device",
}


def canonical(study) -> dict:
    """(slot, attempt) -> (state, values, user attributes but timing), and the racing
    record with trial numbers replaced by slots. Interrupted trials are left out (their
    slot was run again)."""
    trials = [t for t in study.trials if t.user_attrs.get("failure") != "interrupted"]
    slot = {t.number: (t.user_attrs["slot"], t.user_attrs["attempt"]) for t in trials}
    rows = {}
    for t in trials:
        attrs = {k: v for k, v in t.user_attrs.items() if k not in TIMING}
        if "rungs" in attrs:  # a rung's record holds the seconds trained so far
            attrs["rungs"] = {step: {k: v for k, v in m.items() if k not in TIMING} for step, m in attrs["rungs"].items()}
        if "duplicate_of" in attrs:
            attrs["duplicate_of"] = slot[attrs["duplicate_of"]]
        rows[slot[t.number]] = (t.state.name, t.values, attrs, t.params)
    racing = {}
    for key, value in study.user_attrs.items():
        if key.startswith("repeat:"):
            _, number, index = key.split(":")
            racing[f"repeat:{slot[int(number)]}:{index}"] = value
        elif key.startswith("racing:round:"):
            racing[key] = [[slot[n], i] for n, i in value]
        elif key == "front_confidence":
            racing[key] = {slot[int(n)]: c for n, c in value.items()}
        elif key == "racing:done":
            racing[key] = value
    return {"trials": rows, "racing": racing}


def stored(path: Path):
    cfg = load_study(path)
    return optuna.load_study(study_name=cfg.name, storage=cfg.storage)

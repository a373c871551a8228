"""A study's trials as one table (pandas), with the Pareto front and hypervolume.

This is the data the dashboard renders and `skipsearch results` writes: one row per
trial, spec fields flattened (``block.type``, ``skip.target``, ...), objectives, costs,
metrics, state, the reason of a failure or infeasibility, and whether the trial is on the
front of feasible complete trials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError
from .pareto import default_reference, hypervolume, hypervolume_history, non_dominated

SKIP_COLUMNS = ("spec", "skip_timeline", "skip_levels")  # kept out of the flat table


@dataclass
class StudyResults:
    name: str
    directory: Path
    frame: Any  # pandas.DataFrame, one row per trial
    objectives: list[str]
    directions: list[str]
    config: dict[str, Any]
    reference: np.ndarray | None
    hypervolume: float
    hv_history: Any  # pandas.DataFrame: number, hypervolume
    trials: list  # TrialRecords, in number order

    @property
    def front(self):
        return self.frame[self.frame["pareto"]]


def find_storage(directory: Path) -> str:
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory}: study folder not found")
    db = directory / "study.db"
    if not db.exists():
        raise UserError(f"{directory}: no study.db in this folder (the output folder of a study, e.g. studies/quickstart)")
    return f"sqlite:///{db.resolve()}"


def load_optuna_study(directory: Path, name: str | None = None):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = find_storage(directory)
    names = optuna.get_all_study_names(storage)
    if name is None:
        if len(names) != 1:
            raise UserError(f"{directory}: holds studies {', '.join(names) or '(none)'}; name one with --study")
        name = names[0]
    elif name not in names:
        raise UserError(f"{directory}: no study {name!r}; allowed: {', '.join(names)}")
    return optuna.load_study(study_name=name, storage=storage)


@dataclass
class TrialRecord:
    """What the results table, dashboard and export need of one trial."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    values: list[float] | None
    user_attrs: dict[str, Any]
    datetime_start: Any = None
    datetime_complete: Any = None


def _read_sqlite(db: Path, name: str) -> list[TrialRecord] | None:
    """All trials straight from Optuna's SQLite tables (one query each); None when the
    file does not look like Optuna's schema, so the caller uses Optuna's API instead."""
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            (study_id,) = con.execute("SELECT study_id FROM studies WHERE study_name = ?", (name,)).fetchone()
            trials = con.execute(
                "SELECT trial_id, number, state, datetime_start, datetime_complete FROM trials WHERE study_id = ?", (study_id,)
            ).fetchall()
            ids = {t[0]: t for t in trials}
            values: dict[int, dict[int, float]] = {}
            for tid, objective, value in con.execute(
                "SELECT v.trial_id, v.objective, v.value FROM trial_values v JOIN trials t USING (trial_id) WHERE t.study_id = ?",
                (study_id,),
            ):
                values.setdefault(tid, {})[objective] = value
            attrs: dict[int, dict[str, Any]] = {}
            for tid, key, value in con.execute(
                "SELECT a.trial_id, a.key, a.value_json FROM trial_user_attributes a "
                "JOIN trials t USING (trial_id) WHERE t.study_id = ?",
                (study_id,),
            ):
                attrs.setdefault(tid, {})[key] = json.loads(value)
        finally:
            con.close()
    except (sqlite3.Error, TypeError, ValueError):
        return None
    out = []
    for tid, (_, number, state, start, complete) in ids.items():
        v = values.get(tid)
        out.append(TrialRecord(number, str(state), [v[i] for i in sorted(v)] if v else None, attrs.get(tid, {}), start, complete))
    return sorted(out, key=lambda t: t.number)


def _read_trials(study) -> list[TrialRecord]:
    storage = getattr(study._storage, "_backend", study._storage)
    url = str(getattr(getattr(storage, "engine", None), "url", ""))
    if url.startswith("sqlite:///"):
        fast = _read_sqlite(Path(url[len("sqlite:///") :]), study.study_name)
        if fast is not None:
            return fast
    return [
        TrialRecord(t.number, t.state.name, t.values, t.user_attrs, t.datetime_start, t.datetime_complete)
        for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    ]


def _flatten_spec(spec_json: str | None) -> dict[str, Any]:
    if not spec_json:
        return {}
    spec = json.loads(spec_json)
    out = {}
    for key, value in spec.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            out[key] = "/".join(map(str, value))
        elif key != "schema":
            out[key] = value
    return out


def load_results(directory: str | Path, name: str | None = None) -> StudyResults:
    import pandas as pd

    directory = Path(directory)
    study = load_optuna_study(directory, name)
    config = study.user_attrs.get("config", {})
    objectives = [o[0] for o in config.get("objectives", [])] or [f"objective_{i}" for i in range(len(study.directions))]
    directions = [d.name.lower() for d in study.directions]
    trials = _read_trials(study)
    rows = []
    for t in trials:
        attrs = t.user_attrs
        row: dict[str, Any] = {"number": t.number, "state": t.state}
        for i, name_ in enumerate(objectives):
            row[name_] = t.values[i] if t.values is not None else attrs.get(name_)
        row["feasible"] = "infeasible" not in attrs and t.state != "FAIL"
        row["failure"] = attrs.get("failure")
        row["infeasible"] = attrs.get("infeasible")
        for key, value in attrs.items():
            if key not in SKIP_COLUMNS and key not in row:
                row[key] = value
        row.update(_flatten_spec(attrs.get("spec")))
        row["start"] = t.datetime_start
        row["complete"] = t.datetime_complete
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["number", "state", *objectives, "feasible"])
    ok = (frame["state"] == "COMPLETE") & frame["feasible"].astype(bool)
    frame["pareto"] = False
    reference, hv, history = None, 0.0, pd.DataFrame({"number": [], "hypervolume": []})
    if ok.any():
        values = frame.loc[ok, objectives].to_numpy(dtype=float)
        frame.loc[ok, "pareto"] = non_dominated(values, directions)
        reference = default_reference(values, directions)
        hv = hypervolume(values, directions, reference)
        history = pd.DataFrame(
            {"number": frame.loc[ok, "number"].to_numpy(), "hypervolume": hypervolume_history(values, directions, reference)}
        )
    return StudyResults(study.study_name, directory, frame, objectives, directions, config, reference, hv, history, trials)


def write_table(results: StudyResults, fmt: str, out: str | Path | None) -> str | None:
    """csv/json to `out` or return the text; parquet needs a file (default in the study folder)."""
    frame = results.frame.copy()
    for col in ("start", "complete"):
        if col in frame:
            frame[col] = frame[col].astype(str)
    if fmt == "csv":
        text = frame.to_csv(index=False)
    elif fmt == "json":
        text = frame.to_json(orient="records", indent=1)
    elif fmt == "parquet":
        path = Path(out) if out else results.directory / "results.parquet"
        frame.to_parquet(path, index=False)
        return None
    else:
        raise UserError(f"--format: {fmt!r}; allowed: csv, parquet, json")
    if out:
        Path(out).write_text(text)
        return None
    return text

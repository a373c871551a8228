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
from .search import attrs as A
from .search.repeats import assemble, own_values
from .search.storage import (
    POINTER,
    DatabaseUnreachable,
    StoredStudy,
    check_sqlite_file,
    read_pointer,
    read_study,
    shown_url,
    sqlite_path,
    study_names,
)

SKIP_COLUMNS = A.STRUCTURED  # kept out of the flat table
# columns every table has, even when no trial (or no complete one) carries them yet
ALWAYS = (A.FAILURE, A.INFEASIBLE, A.ARCH_ID, A.SUMMARY, A.PRESET, "skip.type", "block.type", "skip_memory_bytes", "params")


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
    if not directory.exists():
        raise UserError(f"{directory}: study folder not found")
    if not directory.is_dir():
        raise UserError(f"{directory}: is a file; allowed: a study's output folder (holding study.db), e.g. studies/quickstart")
    url = read_pointer(directory)  # a study kept elsewhere (a database server): its URL, noted by `run`
    if url is not None:
        db = sqlite_path(url)
        if db is not None:
            if not db.exists():
                raise UserError(f"{directory / POINTER}: names {db}, which does not exist; allowed: the study database's URL")
            check_sqlite_file(db)
        return url
    db = directory / "study.db"
    if not db.exists():
        raise UserError(f"{directory}: no study.db in this folder (the output folder of a study, e.g. studies/quickstart)")
    check_sqlite_file(db)  # read-only: a foreign or empty file is refused, never written to
    return f"sqlite:///{db.resolve()}"


def _pick(directory: Path, names: list[str], name: str | None, where: str = "study.db") -> str:
    if not names:
        raise UserError(f"{directory}: {where} holds no study; allowed: the output folder of a study that has been run")
    if name is None:
        if len(names) != 1:
            raise UserError(f"{directory} holds studies {', '.join(names)}; allowed: one of them, by name", field="study")
        return names[0]
    if name not in names:
        raise UserError(f"{directory} has no study {name!r}; allowed: {', '.join(names) or '(none)'}", field="study")
    return name


def load_stored_study(directory: Path, name: str | None = None) -> StoredStudy:
    """A study's data from its output folder, read without writing (search/storage.py)."""
    url = find_storage(directory)
    db = sqlite_path(url)
    if db is not None:
        return read_study(db, _pick(directory, study_names(db), name))
    try:  # a database server, read with plain SELECTs
        return read_study(url, _pick(directory, study_names(url), name, where=shown_url(url)))
    except DatabaseUnreachable as err:
        hint = "; the password is not kept in that file: give it in PGPASSWORD or ~/.pgpass" if "password" in err.message else ""
        raise UserError(f"{directory / POINTER}: {err.message}{hint}") from None


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


def _seed_figures(first: list[float], more: list[list[float]], objectives: list[str], conf: float | None) -> dict[str, Any]:
    """Mean values over a trial's seeds (its own run first), per-seed values of the first
    objective, the spread of each objective that varies, and the bootstrap confidence."""
    rows = np.array([first, *more], dtype=float)
    out: dict[str, Any] = {"_means": rows.mean(axis=0).tolist(), "n_seeds": len(rows), "seeds": rows[:, 0].tolist()}
    for i, name in enumerate(objectives):
        if np.ptp(rows[:, i]) > 0:
            out[f"{name}_std"] = float(rows[:, i].std(ddof=1))
    if conf is not None:
        out[A.FRONT_CONFIDENCE] = float(conf)
    return out


def load_results(directory: str | Path, name: str | None = None) -> StudyResults:
    import pandas as pd

    directory = Path(directory)
    study = load_stored_study(directory, name)
    config = study.user_attrs.get(A.CONFIG, {})
    objectives = [o[0] for o in config.get("objectives", [])] or [f"objective_{i}" for i in range(len(study.directions))]
    directions = study.directions
    trials = study.trials
    repeats, confidence = assemble(study.user_attrs), A.front_confidence(study.user_attrs)
    rows = []
    for t in trials:
        attrs = t.user_attrs
        row: dict[str, Any] = {"number": t.number, "state": t.state}
        values = t.values
        source = str(A.duplicate_of(t) if A.duplicate_of(t) is not None else t.number)  # a duplicate shares its original's seeds
        if values is not None and source in repeats:  # a raced trial's Optuna values are its means: its own run's first
            first = own_values(values, attrs, objectives)
            row.update(_seed_figures(first, repeats[source]["values"], objectives, confidence.get(source)))
            values = row.pop("_means")
        for i, name_ in enumerate(objectives):
            row[name_] = values[i] if values is not None else attrs.get(name_)
        row["feasible"] = A.infeasible(t) is None and t.state != "FAIL"
        row[A.FAILURE] = A.failure(t)
        row[A.INFEASIBLE] = A.infeasible(t)
        for key, value in attrs.items():
            if key not in SKIP_COLUMNS and key not in row:
                row[key] = value
        row.update(_flatten_spec(A.spec_json(t)))
        row["start"] = t.datetime_start
        row["complete"] = t.datetime_complete
        rows.append(row)
    frame = pd.DataFrame(rows)
    for col in ("number", "state", *objectives, "feasible", *ALWAYS):  # an empty or all-failed study has the same columns
        if col not in frame:
            frame[col] = pd.Series([None] * len(frame), dtype=object)
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
        raise UserError(f"{fmt!r}; allowed: csv, parquet, json", field="format")
    if out:
        Path(out).write_text(text)
        return None
    return text

"""Which search-space parameters decide each objective, and reaching the front: Optuna's
PED-ANOVA importance evaluator run over the study's own trials (not a hand-made score).

PED-ANOVA compares where the best trials (top 10 % for an objective; for "the front", the
best by non-domination rank) sit in each parameter's range against the whole study; an
importance near 0 means the best trials are spread like all the others. Duplicates of an
earlier trial are left out (they would count one architecture twice); seed presets have
no sampled parameters and take no part.
"""

from __future__ import annotations

import warnings
from typing import Any

from .results import StudyResults
from .search import attrs as A

MIN_TRIALS = 8  # below this the top quantile holds one trial and the estimate says nothing


def importances(r: StudyResults) -> dict[str, dict[str, float]]:
    """{target: {parameter: importance}} for each objective and for "Pareto front"; {} when
    the study has fewer than MIN_TRIALS sampled complete trials or no parameters vary."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    trials = [_frozen(t) for t in r.trials if t.state == "COMPLETE" and t.params and A.duplicate_of(t) is None]
    if len(trials) < MIN_TRIALS:
        return {}
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(directions=list(r.directions))
    study.add_trials(trials)
    out: dict[str, dict[str, float]] = {}
    targets: list[tuple[str, Any]] = [
        (name, (lambda t, i=i, s=(1 if d == "minimize" else -1): s * t.values[i]))  # PED-ANOVA: lower is better
        for i, (name, d) in enumerate(zip(r.objectives, r.directions, strict=True))
    ]
    if len(r.objectives) > 1:
        targets.append(("Pareto front", None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "params equal" / "lower target is better" notes
        for name, target in targets:
            try:
                found = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator(), target=target)
            except (ValueError, RuntimeError):  # a parameter with one value throughout, and similar
                continue
            out[name] = {str(k): float(v) for k, v in found.items()}
    return out


def _frozen(t):
    """An Optuna FrozenTrial of a stored trial record (its parameters in their own terms)."""
    import optuna
    from optuna.distributions import json_to_distribution

    dists = {name: json_to_distribution(d) for name, (_, d) in t.params.items()}
    params = {name: dists[name].to_external_repr(v) for name, (v, _) in t.params.items()}
    return optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, values=t.values, params=params, distributions=dists)


def importance_figure(r: StudyResults):
    import plotly.graph_objects as go

    from .dashboard import esc

    found = importances(r)
    fig = go.Figure()
    params = sorted({p for v in found.values() for p in v})
    for target, values in found.items():
        fig.add_trace(go.Bar(x=[esc(p) for p in params], y=[values.get(p, 0.0) for p in params], name=esc(target)))
    why = "" if found else f" (needs {MIN_TRIALS} or more complete sampled trials)"
    fig.update_layout(
        title="Parameter importance (Optuna PED-ANOVA, normalised per target)" + why,
        barmode="group",
        yaxis={"title": {"text": "importance"}},
        height=380,
    )
    return fig

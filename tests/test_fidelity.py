"""Pareto-aware successive halving: rungs, ranks, and who goes on."""

from __future__ import annotations

import numpy as np
import pytest

from skipsearch.search.fidelity import Fidelity, goes_on, order, pareto_ranks

DIRS = ["maximize", "minimize"]  # (dice, skip memory)


def test_rungs():
    assert Fidelity(25, 2).rungs(200) == [25, 50, 100]
    assert Fidelity(30, 3).rungs(300) == [30, 90, 270]
    assert Fidelity(300, 3).rungs(300) == []


def test_pareto_ranks_match_brute_force():
    rng = np.random.default_rng(0)
    values = rng.random((40, 2))
    ranks = pareto_ranks(values, DIRS)

    def dominates(a, b):
        return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])

    for i, v in enumerate(values):  # rank = 1 + max rank of those that dominate it
        above = [ranks[j] for j, w in enumerate(values) if dominates(w, v)]
        assert ranks[i] == (max(above) + 1 if above else 0)


def test_first_at_a_rung_goes_on_and_dominated_ones_stop():
    assert goes_on([0.1, 9.0], np.empty((0, 2)), DIRS, eta=3)
    others = np.array([[0.8, 1.0], [0.7, 2.0]])
    assert not goes_on([0.5, 3.0], others, DIRS, eta=3)  # dominated by both: last of 3, keep 1
    assert goes_on([0.9, 0.5], others, DIRS, eta=3)  # dominates both


def test_a_cheap_point_survives_on_the_front_even_with_lower_accuracy():
    """The interesting low-memory points are not dropped for being less accurate."""
    others = np.array([[0.9, 8.0], [0.85, 7.0], [0.5, 7.5], [0.4, 9.0]])
    assert goes_on([0.6, 0.1], others, DIRS, eta=2)  # rank 0, big hypervolume contribution


def test_ties_in_rank_are_broken_by_hypervolume_contribution():
    values = np.array([[0.9, 5.0], [0.5, 1.0], [0.7, 4.99]])  # all on one front
    best_to_worst = order(values, DIRS)
    assert best_to_worst[-1] == 2  # squeezed between the others: the smallest contribution


@pytest.mark.parametrize("eta", [2, 3, 4])
def test_about_one_in_eta_goes_on_for_random_arrivals(eta):
    rng = np.random.default_rng(eta)
    seen, kept = np.empty((0, 2)), 0
    for _ in range(120):
        v = rng.random(2)
        kept += goes_on(v, seen, DIRS, eta)
        seen = np.vstack([seen, v])
    assert 120 / eta * 0.6 < kept < 120 / eta * 1.6


def test_front_confidence_bootstrap():
    from skipsearch.search.repeats import front_confidence

    solid = np.array([[0.9, 1.0], [0.91, 1.0], [0.89, 1.0]])  # clearly best, little spread
    shaky = np.array([[0.95, 2.0], [0.5, 2.0], [0.6, 2.0]])  # above `solid` only by luck of one seed
    worse = np.array([[0.4, 3.0]])  # dominated by solid whatever happens
    conf = front_confidence([solid, shaky, worse], DIRS, resamples=400)
    assert conf[0] == 1.0 and conf[2] == 0.0 and 0.0 < conf[1] < 0.5


def test_study_with_fidelity_stops_trials_at_rungs(tmp_path):
    from test_search import trials_of, write_study

    from skipsearch.cli import main
    from skipsearch.results import load_results

    path = write_study(
        tmp_path,
        n_trials=8,
        budget="{steps: 8, batch: 2, size: [32, 32]}",
        fidelity="{type: asha, min_steps: 2, eta: 2}",
    )
    assert main(["run", str(path), "--backend", "local"]) == 0
    trials = trials_of(path)
    stopped = [t for t in trials if t.state.name == "PRUNED" and "infeasible" not in t.user_attrs]
    trained = [t for t in trials if t.state.name == "COMPLETE" and t.user_attrs.get("duplicate_of") is None]
    assert stopped and trained  # with eta 2 some go on and some stop
    for t in stopped:
        assert t.user_attrs["rung"] in (0, 1) and t.user_attrs["steps"] in (2, 4)
        assert [s for s, _ in t.user_attrs["curve"]] == [2, 4][: t.user_attrs["rung"] + 1]
        assert t.user_attrs["dice"] == t.user_attrs["curve"][-1][1]
    for t in trained:
        assert [s for s, _ in t.user_attrs["curve"]] == [2, 4, 8] and t.user_attrs["steps"] == 8
    front = load_results(tmp_path / "t").front
    assert set(front["number"]) <= {t.number for t in trials if t.state.name == "COMPLETE"}


def test_repeats_average_the_front_over_seeds(tmp_path):
    """schedule: async keeps the fixed top-K repeats: the front's K best, S seeds each."""
    from test_search import write_study

    from skipsearch.cli import main
    from skipsearch.results import load_results

    path = write_study(tmp_path, n_trials=3, repeats="{seeds: 3, top: 2}", schedule="async")
    assert main(["run", str(path), "--backend", "local"]) == 0
    r = load_results(tmp_path / "t")
    repeated = r.frame[r.frame["n_seeds"].notna()]
    assert 1 <= len(repeated) <= 2 and (repeated["n_seeds"] == 3).all()
    for _, row in repeated.iterrows():
        assert len(row["seeds"]) == 3 and row["dice"] == pytest.approx(sum(row["seeds"]) / 3)
        assert 0.0 <= row["front_confidence"] <= 1.0
    assert main(["run", str(path), "--backend", "local"]) == 0  # resumed: nothing more to repeat
    assert load_results(tmp_path / "t").frame["n_seeds"].max() == 3
    number = int(repeated["number"].iloc[0])
    assert main(["export", str(tmp_path / "t"), "--trial", str(number), "--out", str(tmp_path / "x")]) == 0
    (card,) = (tmp_path / "x").glob("*/MODEL_CARD.md")
    text = card.read_text()
    row = repeated.iloc[0]
    assert "is the mean of 3 training seeds" in text and f"- dice: {row['dice']:.4f}" in text
    from skipsearch.dashboard import pareto_figure

    fig = pareto_figure(r)  # the repeated points are ringed as confirmed and carry error bars
    (ring,) = [t for t in fig.data if t.name and t.name.startswith("confirmed")]
    assert len(ring.x) == len(repeated)
    bars = [t for t in fig.data if t.error_y is not None and t.error_y.array is not None]
    assert bars and any(v > 0 for t in bars for v in t.error_y.array)

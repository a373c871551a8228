"""The dashboard's data (payload), its live server (/api/results: ETag, 304, gzip, a study
that goes away and comes back) and the page comparing several studies."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import shutil
import threading
from pathlib import Path

import pytest
from test_search import write_study

from skipsearch import UserError
from skipsearch.cli import main
from skipsearch.dashboard import build_page
from skipsearch.payload import payload
from skipsearch.results import load_results
from skipsearch.serve import Watcher, _Server, handler_for


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    path = write_study(tmp, n_trials=4, seed_presets="[tiny-naf]", repeats="{seeds: 2, top: 1}")
    assert main(["run", str(path), "--backend", "local"]) == 0
    return path, tmp / "t"


def test_the_payload_holds_every_trial_with_what_its_view_shows(study):
    _, folder = study
    r = load_results(folder)
    data = payload(r)
    assert [t["number"] for t in data["trials"]] == list(r.frame["number"])
    assert json.loads(json.dumps(data, allow_nan=False)) == data  # plain JSON: the page parses it with JSON.parse
    by_number = {t.number: t for t in r.trials}
    for t in data["trials"]:
        attrs = by_number[t["number"]].user_attrs
        if t["state"] == "COMPLETE":
            assert t["values"]["dice"] == pytest.approx(r.frame.set_index("number").loc[t["number"], "dice"])
            assert t["text"]["skip_memory_bytes"].endswith("MiB")
            assert t["timeline"] == pytest.approx([b / attrs["m_e1_bytes"] for b in attrs["skip_timeline"]])
            assert len(t["stages"]) == len(t["timeline"])
        assert bool(t["export"]) == bool(attrs.get("weights"))
        if t["export"]:
            assert t["export"] == f"skipsearch export {folder} --trial {t['number']}"
    repeated = [t for t in data["trials"] if len(t["seeds"]) == 2]
    assert repeated and all("dice" in t["std"] or t["seeds"][0] == t["seeds"][1] for t in repeated)
    # a click on any trial point of the Pareto plot names its trial
    numbers = {t["number"] for t in data["trials"]}
    marked = [n for trace in data["figures"]["pareto"]["data"] for n in trace.get("customdata", [])]
    assert marked and set(marked) <= numbers
    assert [h[0] for h in data["hv_history"]] == list(r.hv_history["number"])
    assert data["hv_history"][-1][1] == pytest.approx(r.hypervolume)
    front = data["front"]
    dice = {t["number"]: t["values"]["dice"] for t in data["trials"]}
    assert front == sorted(front, key=lambda n: -dice[n])  # most accurate first


def test_pickers_span_the_complete_trials_costs(study):
    r = load_results(study[1])
    done = r.frame[(r.frame["state"] == "COMPLETE") & r.frame["feasible"].astype(bool)]
    pickers = {p["name"]: p for p in payload(r)["pickers"]}
    assert "params" in pickers and "dice" not in pickers
    assert pickers["params"]["min"] == done["params"].min() and pickers["params"]["max"] == done["params"].max()
    assert pickers["skip_memory_bytes"]["div"] == 2**20


def test_the_page_embeds_its_data_and_draws_it_offline(study):
    page = build_page(load_results(study[1]))
    body = re.search(r"<script type='application/json' id='data'>(.*?)</script>", page, re.S).group(1)
    data = json.loads(body)
    assert data["live"] is None and data["study"] == "t"
    assert "setInterval(poll" in page and "Plotly.react" in page and "uirevision" in page
    assert "https://cdn" not in page[:5000]


class Served:
    def __init__(self, folder):
        self.watcher = Watcher(folder, None, importance=False)
        self.watcher.refresh(force=True)
        self.server = _Server(("127.0.0.1", 0), handler_for(self.watcher))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def get(self, path="/api/results", **headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.server_address[1], timeout=30)
        conn.request("GET", path, headers=headers)
        answer = conn.getresponse()
        body = answer.read()
        conn.close()
        return answer.status, dict(answer.getheaders()), body

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_server_answers_polls_from_memory_and_sees_a_new_trial(study, tmp_path, capsys):
    path, folder = study
    copy = tmp_path / "t"
    shutil.copytree(folder, copy)
    s = Served(copy)
    try:
        status, headers, body = s.get()
        assert status == 200 and len(json.loads(body)["trials"]) == 4
        etag = headers["ETag"]
        assert s.get(**{"If-None-Match": etag})[0] == 304  # unchanged: nothing sent
        status, headers, zipped = s.get(**{"Accept-Encoding": "gzip"})
        assert headers["Content-Encoding"] == "gzip" and json.loads(gzip.decompress(zipped)) == json.loads(body)
        status, _, page = s.get("/")
        assert status == 200 and b'"poll_ms": 3000' in page
        assert s.get("/nothing")[0] == 404
        # one more trial in the study: the watcher sees the file change, the ETag moves on
        study_file = path.read_text().replace(f"out: {folder}", "")
        (tmp_path / "study.yaml").write_text(study_file + f"out: {copy}\n")
        assert main(["run", str(tmp_path / "study.yaml"), "--backend", "local", "--trials", "5"]) == 0
        s.watcher.refresh()
        status, headers, body = s.get(**{"If-None-Match": etag})
        assert status == 200 and headers["ETag"] != etag and len(json.loads(body)["trials"]) == 5
        # the folder goes away while serving: 503 with the reason, said once, then back
        shutil.move(copy, tmp_path / "away")
        capsys.readouterr()
        s.watcher.refresh()
        s.watcher.refresh()
        status, _, body = s.get()
        assert status == 503 and "cannot read the study now" in json.loads(body)["error"]
        assert capsys.readouterr().err.count("cannot read the study now") == 1
        shutil.move(tmp_path / "away", copy)
        s.watcher.refresh()
        assert s.get()[0] == 200 and "readable again" in capsys.readouterr().err
    finally:
        s.close()


def test_a_busy_port_names_itself_and_a_free_one(study, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dashboard", str(study[1]), "--serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--port: {port} on 127.0.0.1 is not free" in err[0] and "a free port, e.g. " in err[0]


def test_compare_overlays_fronts_on_a_shared_reference(study, tmp_path, capsys):
    other = write_study(tmp_path / "b", n_trials=3, sampler="random", seed=5)
    assert main(["run", str(other), "--backend", "local"]) == 0
    out = tmp_path / "both.html"
    assert main(["dashboard", str(study[1]), str(tmp_path / "b" / "t"), "--out", str(out)]) == 0
    page = out.read_text()
    data = json.loads(re.search(r"<script type='application/json' id='data'>(.*?)</script>", page, re.S).group(1))
    a, b = load_results(study[1]), load_results(tmp_path / "b" / "t")
    from skipsearch.compare import shared_reference

    assert data["reference"] == pytest.approx(list(shared_reference([a, b])))
    for r in (a, b):  # every complete trial of both studies dominates the shared reference
        done = r.frame[r.frame["state"] == "COMPLETE"]
        assert data["reference"][0] < done["dice"].min() and data["reference"][1] > done["skip_memory_bytes"].max()
    assert page.count(": front") == 2 and "Hypervolume by complete trial, shared reference point" in page


def test_compare_refuses_studies_with_other_objectives(study, tmp_path, capsys):
    other = write_study(tmp_path / "c", n_trials=2, objectives="[dice, params]")
    assert main(["run", str(other), "--backend", "local"]) == 0
    capsys.readouterr()
    assert main(["dashboard", str(study[1]), str(tmp_path / "c" / "t")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "objectives dice (maximize), params (minimize) differ from" in err[0]
    assert "dice (maximize), skip_memory_bytes (minimize)" in err[0] and not (study[1] / "compare.html").exists()


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--serve", "a", "b"], "--serve: one study at a time"),
        (["--out", "x.html"], "--out: only for comparing studies"),
        (["--host", "0.0.0.0"], "--host: '0.0.0.0' without --serve"),
    ],
)
def test_dashboard_option_mistakes_are_one_line(study, args, expect, capsys):
    dirs = [str(study[1])] + [a for a in args if a in ("a", "b")]
    options = [a for a in args if a not in ("a", "b")]
    assert main(["dashboard", *dirs, *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0]


def test_a_study_folder_that_is_not_there_is_refused_before_serving(tmp_path, capsys):
    with pytest.raises(UserError):
        load_results(tmp_path / "none")
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert main(["dashboard", str(tmp_path / "none"), "--serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "study folder not found" in err[0]


def test_importance_is_optunas_ped_anova_over_the_studys_own_trials(tmp_path):
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    from skipsearch.importance import importances

    tiny = Path(__file__).resolve().parents[1] / "search_spaces" / "tiny.yaml"  # large enough for no duplicates
    path = write_study(tmp_path, space=tiny, n_trials=10, budget="{steps: 2, batch: 2, size: [32, 32]}")
    assert main(["run", str(path), "--backend", "local"]) == 0
    found = importances(load_results(tmp_path / "t"))
    assert set(found) == {"dice", "skip_memory_bytes", "Pareto front"}
    stored = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 't' / 'study.db'}")
    kept = [t for t in stored.trials if t.state.name == "COMPLETE" and t.params and "duplicate_of" not in t.user_attrs]
    again = optuna.create_study(directions=["maximize", "minimize"])
    again.add_trials(kept)
    want = get_param_importances(again, evaluator=PedAnovaImportanceEvaluator(), target=lambda t: -t.values[0])
    assert found["dice"] == pytest.approx(dict(want))
    assert all(sum(v.values()) == pytest.approx(1.0) or not any(v.values()) for v in found.values())
    data = payload(load_results(tmp_path / "t"))
    bars = data["figures"]["importance"]["data"]
    assert {b["name"] for b in bars} == set(found)

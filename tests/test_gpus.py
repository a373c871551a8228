"""Memory-aware GPU packing (`resources: {gpus: auto}`): the shares, the refusals and the
allocator cap, without Ray (the packing on Ray itself is in test_ray.py, slow)."""

from __future__ import annotations

import math
import re

import pytest
import torch
from test_search import write_study

from skipsearch import UserError
from skipsearch.costs.training import train_memory
from skipsearch.search import gpus as packing
from skipsearch.search.config import load_study
from skipsearch.search.study import Runner
from skipsearch.search.worker import trial_config

GiB, MiB = 2**30, 2**20
SPACE = """name: packed
params:
  depth: {choice: [2, 3]}
  width: {choice: [8, 16, 64]}
  block.type: {choice: [naf, conv]}
  skip.type: {choice: [plain, none]}
"""


def packed_study(tmp_path, resources="{gpus: auto, gpu_memory: 1 GiB, gpu_context: 128 MiB}", **fields):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "space.yaml").write_text(SPACE)
    fields = {"space": tmp_path / "space.yaml", "resources": resources, "budget": "{steps: 1, batch: 2, size: [64, 64]}"}
    return write_study(tmp_path, **fields)


def test_the_share_is_the_predicted_peak_with_margin_and_context_over_the_gpu_memory():
    gpus = packing.Gpus(packing.Packing(None, 0.25, 128 * MiB), GiB, GiB, "stated")
    for peak in (1, 10 * MiB, 300 * MiB, 700 * MiB, 900 * MiB):
        want = max(0.01, math.ceil((math.ceil(peak * 1.25) + 128 * MiB) / GiB * 100) / 100)
        assert gpus.share(peak) == pytest.approx(want)
        # the allocator's cap leaves the context out of the share, and stays above the peak
        cap = gpus.worker(peak)["allocator_bytes"]
        assert cap == int(gpus.share(peak) * GiB) - 128 * MiB and cap >= peak * 1.25
    assert gpus.unfit(600 * MiB) is None
    reason = gpus.unfit(800 * MiB)  # 800 * 1.25 + 128 MiB = 1128 MiB > 1 GiB
    assert "train_peak_bytes = 800.0 MiB" in reason and "1.10 GiB" in reason and "more than a GPU's 1.00 GiB" in reason


def test_resources_fields_parse_with_units_and_defaults(tmp_path):
    cfg = load_study(packed_study(tmp_path, "{gpus: auto, gpu_memory: 80 GiB}"))
    assert cfg.gpus == "auto" and cfg.gpu_packing == packing.Packing(80 * GiB, packing.MARGIN, packing.CONTEXT)
    cfg = load_study(packed_study(tmp_path, "{cpus: 2, gpus: auto, gpu_margin: 0.5, gpu_context: 1 GiB}"))
    assert (cfg.cpus, cfg.gpu_packing) == (2, packing.Packing(None, 0.5, GiB))
    cfg = load_study(packed_study(tmp_path, "{gpus: 0.25}"))
    assert (cfg.gpus, cfg.gpu_packing) == (0.25, None)


@pytest.mark.parametrize(
    ("resources", "expect"),
    [
        ("{gpus: 0.5, gpu_memory: 80 GiB}", "resources.gpu_memory: given with gpus: 0.5; allowed: only with gpus: auto"),
        ("{gpus: auto, gpu_memory: 80}", "resources.gpu_memory: 80; allowed: the memory of each GPU, >= 1 GiB"),
        ("{gpus: auto, gpu_margin: -0.1}", "resources.gpu_margin: -0.1; allowed: a fraction of the peak, 0-4"),
        ("{gpus: auto, gpu_context: 80 GiB}", "resources.gpu_context: '80 GiB'; allowed: 0-64 GiB"),
        ("{gpus: automatic}", "resources.gpus: 'automatic'; allowed: a number >= 0"),
    ],
)
def test_bad_packing_fields_are_one_line(tmp_path, resources, expect):
    with pytest.raises(UserError) as info:
        load_study(packed_study(tmp_path, resources))
    assert expect in str(info.value) and str(tmp_path / "study.yaml") in str(info.value)


def test_the_lower_corner_is_the_smallest_architecture_of_the_space(tmp_path):
    cfg = load_study(packed_study(tmp_path))
    spec, peak = packing.smallest_training_peak(cfg, cfg.make_task())
    assert (spec.depth, spec.width, spec.skip.type) == (2, 8, "none")
    # no point of this small space trains in less (every combination, predicted)
    task = cfg.make_task()
    peaks = []
    for depth in (2, 3):
        for width in (8, 16, 64):
            for block in ("naf", "conv"):
                for skip in ("plain", "none"):
                    point = {"depth": depth, "width": width, "block.type": block, "skip.type": skip}
                    peaks.append(train_memory(cfg.space.to_spec(point, task), cfg.budget).peak_bytes)
    assert peak == min(peaks)


def test_a_batch_no_gpu_can_hold_is_refused_before_the_study_is_touched(tmp_path):
    path = packed_study(tmp_path)
    text = path.read_text().replace("batch: 2, size: [64, 64]", "batch: 256, size: [256, 256]")
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_study(path)
    message = str(info.value)
    assert "budget.batch: 256 at size [256, 256]: the space's smallest architecture" in message
    assert "more than the largest GPU (1.00 GiB, stated)" in message and "train_peak_bytes = " in message
    assert not (tmp_path / "t").exists()


def test_gpus_auto_needs_the_ray_backend(tmp_path):
    from skipsearch.search.run import run_study

    with pytest.raises(
        UserError, match=re.escape("resources.gpus: auto packs Ray trials onto GPUs; allowed with the ray backend (the default)")
    ):
        run_study(packed_study(tmp_path), backend="local")
    assert not (tmp_path / "t").exists()


def test_each_trial_asks_for_its_share_and_one_that_cannot_fit_is_not_trained(tmp_path):
    cfg = load_study(packed_study(tmp_path))
    gpus = packing.Gpus(cfg.gpu_packing, GiB, GiB, "stated")
    runner = Runner(cfg, gpus)
    try:
        asked = [runner.next_trial() for _ in range(3)]
        for p in asked:
            peak = train_memory(p.spec, cfg.budget).peak_bytes
            assert p.costs["train_peak_bytes"] == peak  # worked out although the study does not optimise it
            config = trial_config(p, runner)
            assert config["gpu"] == gpus.worker(peak) and p.trial.user_attrs["gpu_share"] == gpus.share(peak)
    finally:
        runner.close()
    cfg = load_study(packed_study(tmp_path / "small"))
    runner = Runner(cfg, packing.Gpus(cfg.gpu_packing, 130 * MiB, 130 * MiB, "stated"))  # too small for any
    try:
        assert runner.next_trial() is None
        trials = runner.study.trials
        assert len(trials) == cfg.n_trials and all(t.state.name == "PRUNED" for t in trials)
        assert all("more than a GPU's 130.0 MiB" in t.user_attrs["infeasible"] for t in trials)
    finally:
        runner.close()


def test_the_worker_caps_its_cuda_allocator_at_the_trial_share(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: type("P", (), {"total_memory": 80 * GiB}))
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, d: calls.append((f, d)))
    packing.limit_allocator({"share": 0.3, "allocator_bytes": 20 * GiB})
    packing.limit_allocator(None)  # not packed: the allocator is left alone
    assert calls == [(0.25, 0)]

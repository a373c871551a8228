"""Training memory: one training step's peak, predicted on meta = measured on CPU, as an
objective and a constraint, and on the command line."""

from __future__ import annotations

import json

import pytest
from test_search import trials_of, write_study

from skipsearch import list_blocks, list_skips, preset
from skipsearch import testing as contract
from skipsearch.cli import main
from skipsearch.costs.training import train_memory
from skipsearch.objectives import OBJECTIVES
from skipsearch.train import Budget


@pytest.mark.parametrize("block, skip", [("naf", s) for s in list_skips()] + [(b, "plain") for b in list_blocks() if b != "naf"])
def test_predicted_equals_measured_for_every_design_and_family(block, skip):
    contract.check_train_memory(contract.small_spec(block, skip, 2))


@pytest.mark.parametrize("name", ["tinyunet", "nafnet-sidd-w32"])
def test_presets_with_other_heads_and_losses(name):
    """TinyU-Net: two output channels (CE + Dice); NAFNet: a restore head (PSNR loss)."""
    contract.check_train_memory(preset(name), batch=1)


def test_the_peak_grows_with_the_batch_by_the_activations_only():
    spec = preset("tiny-naf")
    one, four = (train_memory(spec, Budget(batch=b, size=(32, 32))) for b in (1, 4))
    assert (one.weights, one.optimizer) == (four.weights, four.optimizer)
    assert four.activations > 3 * one.activations


def test_a_training_memory_constraint_prunes_without_training(tmp_path):
    path = write_study(
        tmp_path,
        n_trials=6,
        objectives="[dice, train_peak_bytes]",
        constraints="[{objective: train_peak_bytes, max: 3 MiB}]",
    )
    assert main(["run", str(path), "--backend", "local"]) == 0
    trials = trials_of(path)
    budget = Budget(steps=2, batch=2, size=(32, 32))
    for t in trials:
        from skipsearch import ArchSpec

        expected = train_memory(ArchSpec.from_json(t.user_attrs["spec"]), budget).peak_bytes
        assert t.user_attrs["train_peak_bytes"] == expected
        if expected > 3 * 2**20:
            assert t.state.name == "PRUNED" and "train_peak_bytes" in t.user_attrs["infeasible"]
            assert "weights" not in t.user_attrs  # never trained
    assert {t.state.name for t in trials} >= {"PRUNED", "COMPLETE"}
    assert OBJECTIVES.get("train_peak_bytes").before_training
    done = next(t for t in trials if t.state.name == "COMPLETE" and t.user_attrs.get("duplicate_of") is None)
    assert done.values[1] == done.user_attrs["train_peak_bytes"]  # the objective the study optimised
    assert main(["export", str(tmp_path / "t"), "--trial", str(done.number), "--out", str(tmp_path / "x")]) == 0
    (card,) = (tmp_path / "x").glob("*/MODEL_CARD.md")
    mib = f"{done.user_attrs['train_peak_bytes'] / 2**20:.3f} MiB"
    assert "training step peak" in card.read_text() and mib in card.read_text()


def test_profile_train_on_the_command_line(capsys):
    args = ["profile", "--preset", "tiny-naf-sdi", "--input", "3x64x64", "--batch", "4", "--train", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    expected = train_memory(preset("tiny-naf-sdi"), Budget(batch=4, size=(64, 64)))
    assert out["train_peak_bytes"] == expected.peak_bytes and out["batch"] == 4
    assert out["train"]["breakdown"] == expected.to_dict()["train"]["breakdown"]
    assert main(["profile", "--preset", "tiny-naf", "--train", "--dtype", "bfloat16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--dtype: 'bfloat16' with --train" in err[0]
    assert main(["profile", "--preset", "tiny-naf", "--checkpoint"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--checkpoint" in err[0] and "with --train" in err[0]
    assert main([*args, "--checkpoint"]) == 0
    out = json.loads(capsys.readouterr().out)
    ckpt = train_memory(preset("tiny-naf-sdi"), Budget(batch=4, size=(64, 64), checkpoint=True))
    assert out["train_peak_bytes"] == ckpt.peak_bytes < expected.peak_bytes and out["train"]["checkpoint"] is True


@pytest.mark.parametrize("name", ["tiny-naf-unetmm", "tiny-cmrf"])  # LayerNorm; batch norm (running statistics)
def test_checkpointing_trains_the_same_network(name):
    """The same losses at every step, the same weights and batch-norm statistics after."""
    import torch

    from skipsearch import build_model
    from skipsearch.tasks import make_task
    from skipsearch.train import _optimizer, train_step

    task = make_task("shapes", train_samples=8, val_samples=2)
    spec = task.adapt(preset(name))
    runs = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = build_model(spec).train()
        model.checkpointing = checkpointing
        budget = Budget(batch=2, size=(32, 32), checkpoint=checkpointing)
        opt, batches = _optimizer(model, task, budget), task.train_batches((32, 32), 2, 0)
        losses = [float(train_step(model, opt, task, *next(batches), budget).detach()) for _ in range(4)]
        runs.append((losses, model.state_dict()))
    (plain_losses, plain), (ckpt_losses, ckpt) = runs
    assert plain_losses == ckpt_losses
    assert plain.keys() == ckpt.keys() and all(torch.equal(plain[k], ckpt[k]) for k in plain)


def test_checkpointing_lowers_the_peak_and_the_prediction_covers_it():
    spec = contract.small_spec("naf", "msiam_iem", 3)
    plain = train_memory(spec, Budget(batch=2, size=(64, 64)))
    ckpt = train_memory(spec, Budget(batch=2, size=(64, 64), checkpoint=True))
    assert ckpt.peak_bytes < 0.7 * plain.peak_bytes and ckpt.weights == plain.weights
    measured = train_memory(spec, Budget(batch=2, size=(64, 64), checkpoint=True), device="cpu")
    assert measured.peak_bytes == ckpt.peak_bytes
    assert measured.to_dict()["train"]["breakdown"] == ckpt.to_dict()["train"]["breakdown"]

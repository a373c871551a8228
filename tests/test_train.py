"""evaluate(), the budget, saving, failures, and `skipsearch train`."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from skipsearch import ArchSpec, UserError, build_model, preset
from skipsearch.cli import main
from skipsearch.errors import TrainingError
from skipsearch.tasks import make_task
from skipsearch.tasks.shapes import Shapes
from skipsearch.train import Budget, evaluate

TINY = Budget(steps=4, batch=2, size=(32, 32), val_batch=8)


@pytest.fixture(scope="module")
def shapes():
    return make_task("shapes", train_samples=16, val_samples=8)


def test_evaluate_returns_metrics_and_timing(shapes):
    r = evaluate(preset("tiny-naf"), shapes, TINY)
    for key in ("dice", "iou", "mdice", "miou", "train_time_s", "images_per_s", "steps", "final_loss"):
        assert key in r
    assert 0 <= r["dice"] <= 1 and r["steps"] == 4 and r["weights"] is None


def test_evaluate_is_deterministic_on_cpu(shapes):
    a = evaluate(preset("tiny-cmrf"), shapes, TINY)
    b = evaluate(preset("tiny-cmrf"), shapes, TINY)
    assert a["final_loss"] == b["final_loss"] and a["dice"] == b["dice"]


def test_training_lowers_the_loss(shapes):
    # same seed, same batch sequence: only the learning rate differs
    spec = ArchSpec(block="conv", depth=2, width=8)
    frozen = evaluate(spec, shapes, Budget(steps=40, batch=4, size=(32, 32), lr=1e-12))
    trained = evaluate(spec, shapes, Budget(steps=40, batch=4, size=(32, 32), lr=3e-3))
    assert trained["final_loss"] < 0.9 * frozen["final_loss"]


def test_restoration_reports_psnr_ssim():
    task = make_task("photos-denoise")
    r = evaluate(task.adapt(preset("tiny-naf")), task, TINY)
    assert {"psnr", "ssim"} <= set(r) and 5 < r["psnr"] < 60


def test_saves_weights_and_spec_that_reload(tmp_path, shapes):
    spec = preset("tiny-naf")
    r = evaluate(spec, shapes, TINY, out=tmp_path / "run")
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == [".skipsearch", "metrics.json", "model.safetensors", "spec.json"]  # the marker: ours to replace
    assert ArchSpec.from_json((tmp_path / "run" / "spec.json").read_text()) == spec
    model = build_model(spec)
    model.load_state_dict(load_file(r["weights"]))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


class NaNShapes(Shapes):
    def loss(self, out, target):
        return super().loss(out, target) * float("nan")


def test_nan_loss_raises_clear_error(tmp_path):
    with pytest.raises(TrainingError, match="loss became nan at step 1"):
        evaluate(preset("tiny-naf"), NaNShapes(train_samples=4, val_samples=4), TINY, out=tmp_path / "run")
    assert not list(tmp_path.iterdir())


def test_spec_must_fit_the_task(shapes):
    with pytest.raises(UserError, match="needs out_channels=1, the spec has 3"):
        evaluate(preset("nafnet-sidd-w32"), shapes, TINY)
    assert shapes.adapt(preset("nafnet-sidd-w32")).head == "seg"


@pytest.mark.parametrize(
    "kwargs, message",
    [({"steps": 0}, "budget steps: 0"), ({"optimizer": "sgd"}, "allowed: adamw, adam"), ({"size": (4, 4)}, "budget size")],
)
def test_budget_validation(kwargs, message):
    with pytest.raises(UserError, match=message):
        Budget(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu(shapes):
    with pytest.raises(UserError, match="no CUDA GPU"):
        evaluate(preset("tiny-naf"), shapes, Budget(steps=1, device="cuda"))


def test_cli_train_json_and_out(tmp_path, capsys):
    args = ["train", "--preset", "tiny-cmrf", "--task", "shapes", "--steps", "3", "--size", "32x32", "--batch", "2"]
    assert main([*args, "--json", "--out", str(tmp_path / "o")]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {"dice", "iou"} <= set(d) and d["weights"].endswith("model.safetensors")


def test_cli_train_bad_folder_writes_nothing(tmp_path, capsys):
    from test_tasks import make_seg

    make_seg(tmp_path / "data")
    (tmp_path / "data" / "images" / "a.png").write_bytes(b"junk")
    (tmp_path / "data" / "masks" / "a.png").write_bytes(b"junk")
    code = main(
        ["train", "--preset", "tiny-naf", "--task", "folder-seg", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "a.png: unreadable or corrupt image" in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "args, message",
    [(["--size", "7x7"], "--size: '7x7' is not HxW"), (["--task", "nope"], "unknown task 'nope'")],
)
def test_cli_train_bad_options(args, message, capsys):
    base = {"--preset": "tiny-naf", "--task": "shapes"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    assert main(["train", *[x for kv in base.items() for x in kv]]) == 2
    assert message in capsys.readouterr().err


def test_rungs_continue_exactly_and_can_stop(tmp_path, shapes):
    """Scoring at rungs changes nothing training uses: the weights equal a straight run's."""
    from safetensors.torch import load_file

    spec = shapes.adapt(preset("tiny-cmrf"))  # BatchNorm: scoring must not touch its statistics
    budget = Budget(steps=12, batch=2, size=(32, 32), seed=3)
    straight = evaluate(spec, shapes, budget, out=tmp_path / "a")
    seen = []
    rung = evaluate(spec, shapes, budget, out=tmp_path / "b", rungs=[4, 8], on_rung=lambda s, m: seen.append((s, m)) or True)
    a, b = load_file(straight["weights"]), load_file(rung["weights"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [s for s, _ in seen] == [4, 8] and rung["dice"] == straight["dice"]
    assert [s for s, _ in rung["curve"]] == [4, 8, 12] and rung["curve"][:2] == [[s, m["dice"]] for s, m in seen]
    stopped = evaluate(spec, shapes, budget, out=tmp_path / "c", rungs=[4, 8], on_rung=lambda s, m: False)
    assert stopped["stopped_at"] == 4 and stopped["steps"] == 4 and stopped["weights"] is None
    assert stopped["dice"] == seen[0][1]["dice"] and not (tmp_path / "c").exists()

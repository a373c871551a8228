"""Official checkpoints (skipsearch.load_official) and NAFNet's TLC (block option tlc).

Checkpoints are made by the independent transcriptions in reference_nets.py, whose module
names are the upstream ones, so their state dicts have the layout of the published files.
"""

from __future__ import annotations

import pytest
import reference_nets as ref
import torch
from helpers import randomize

from skipsearch import ArchSpec, UserError, build_model, load_official, preset
from skipsearch.blocks.naf import tlc_window
from skipsearch.official import LAYOUTS, convert, official_names

NAF, reference = ref.NAF, ref.reference


def tame(net: torch.nn.Module) -> torch.nn.Module:
    """Random weights, convolutions scaled to std 1/sqrt(fan-in): outputs stay O(10) through
    36 blocks, so a float64 difference of 1e-9 is far above rounding and far below a bug."""
    randomize(net)
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 4:
                p.mul_(5 / p[0].numel() ** 0.5)
    return net


def randomized(name: str) -> torch.nn.Module:
    """A transcription with random weights and (for BatchNorm) random running statistics."""
    net = tame(reference(name))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)
    return net.eval()


def meta_state(name: str) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return reference(name).state_dict()


@pytest.fixture(scope="module")
def tiny_checkpoint():
    """A randomised TinyU-Net state dict with upstream names (cheap); tests wrap or edit it."""
    return randomized("tinyunet").state_dict()


def save(tmp_path, obj, name="checkpoint.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


# ---------------------------------------------------------------- name maps
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_name_map_is_one_to_one_with_equal_shapes(name):
    """Every upstream tensor maps once onto every skipsearch tensor, shapes equal (meta: cheap)."""
    pairs = official_names(name)
    theirs, ours = [p[0] for p in pairs], [p[1] for p in pairs]
    assert len(set(theirs)) == len(theirs) == len(set(ours))
    state = meta_state(name)
    assert set(theirs) == set(state)
    converted = convert(name, state)
    model = build_model(preset(name), "meta").state_dict()
    assert set(converted) == set(model)
    assert all(converted[k].shape == model[k].shape for k in model)


def test_decoder_lists_are_mapped_deepest_first():
    pairs = dict(official_names("nafnet-sidd-w32"))
    assert pairs["ups.0.0.weight"] == "ups.3.0.weight" and pairs["ups.3.0.weight"] == "ups.0.0.weight"
    assert pairs["decoders.0.1.conv1.weight"] == "decoder.3.1.conv1.weight"
    assert pairs["middle_blks.11.beta"] == "middle.11.beta" and pairs["intro.bias"] == "stem.bias"
    tiny = dict(official_names("tinyunet"))
    assert tiny["decoder4.cmrf.m.6.bn.running_var"] == "decoder.3.0.stages.6.1.running_var"
    assert tiny["final_conv.weight"] == "head.weight"


# ---------------------------------------------------------------- loading: outputs
@pytest.mark.parametrize("name", ["nafnet-sidd-w32", "nafnet-gopro-w32", "tinyunet"])
def test_loaded_checkpoint_reproduces_the_reference(tmp_path, name):
    theirs = randomized(name)
    path = save(tmp_path, {"params": theirs.state_dict()})
    ours = load_official(name, path)
    assert not ours.training
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        diff = (ours.double()(x) - theirs.double()(x)).abs().max().item()
    assert diff <= 1e-9, diff


@pytest.mark.parametrize("wrap", ["bare", "params_ema", "module."])
def test_checkpoint_wrappers(tmp_path, tiny_checkpoint, wrap):
    sd = tiny_checkpoint
    obj = {
        "bare": sd,
        "params_ema": {"params_ema": sd},
        "module.": {f"module.{k}": v for k, v in sd.items()},
    }[wrap]
    model = load_official("tinyunet", save(tmp_path, obj))
    state = model.state_dict()
    for theirs, ours in official_names("tinyunet"):
        assert torch.equal(state[ours], sd[theirs]), theirs


# ---------------------------------------------------------------- loading: errors
def edit(sd, drop=(), add=None, rename=None, reshape=None):
    out = {k: v for k, v in sd.items() if k not in drop}
    if rename:
        old, new = rename
        out = {new if k == old else k: v for k, v in out.items()}
    if reshape:
        out[reshape] = torch.zeros(3, 1)
    return {**out, **(add or {})}


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"rename": ("encoder2.cmrf.m.0.conv.weight", "encoder2.cmrf.m.0.conv_.weight")},
            "tensor 'encoder2.cmrf.m.0.conv_.weight'; did you mean 'encoder2.cmrf.m.0.conv.weight'?",
        ),
        (
            {"reshape": "decoder1.cmrf.pwconv2.bn.bias"},
            "tensor 'decoder1.cmrf.pwconv2.bn.bias' has shape (3, 1), expected (64,) for tinyunet's decoder.0.0.pw2.1.bias",
        ),
        ({"drop": ["final_conv.bias"]}, "no tensor for 'final_conv.bias' (expected shape (2,) for tinyunet's head.bias)"),
        ({"add": {"foo": torch.zeros(1)}}, "unexpected tensor 'foo' (not part of tinyunet's checkpoint layout)"),
    ],
    ids=["renamed", "shape", "missing", "extra"],
)
def test_a_tensor_that_does_not_fit_is_named(tmp_path, tiny_checkpoint, change, message):
    path = save(tmp_path, {"params": edit(tiny_checkpoint, **change)})
    with pytest.raises(UserError) as err:
        load_official("tinyunet", path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


def test_a_checkpoint_of_another_width_is_refused_at_its_first_tensor():
    state = meta_state("nafnet-sidd-w32")
    with pytest.raises(UserError, match=r"^w32\.pth: tensor 'intro\.weight' has shape \(32, 3, 3, 3\), expected") as err:
        convert("nafnet-sidd-w64", state, "w32.pth")
    assert "for nafnet-sidd-w64's stem.weight; " in str(err.value) and "tensors do not fit in all" in str(err.value)
    state = edit(state, rename=("encoders.0.0.conv1.weight", "encoders.0.0.conv.weight"))
    with pytest.raises(UserError, match="did you mean 'encoders.0.0.conv1.weight'"):
        convert("nafnet-sidd-w32", state)
    with pytest.raises(UserError, match=r"no tensor for 'ending\.bias'"):
        convert("nafnet-gopro-w32", edit(meta_state("nafnet-gopro-w32"), drop=["ending.bias"]))


def test_files_that_are_not_checkpoints(tmp_path, tiny_checkpoint):
    text, empty = tmp_path / "notes.pth", tmp_path / "empty.pth"
    text.write_text("not a checkpoint")
    empty.write_bytes(b"")
    cases = {
        text: "not a readable PyTorch checkpoint",
        empty: "not a readable PyTorch checkpoint (empty or truncated)",
        tmp_path / "absent.pth": "no such file",
        tmp_path: "not a file",
        save(tmp_path, [1, 2], "list.pth"): "not a checkpoint: holds list",
        save(tmp_path, {"epoch": 3}, "meta.pth"): "not a checkpoint: holds a dict with keys 'epoch'",
        save(tmp_path, torch.nn.Linear(1, 1), "pickled.pth"): "pickled Python objects besides tensors",
    }
    for path, message in cases.items():
        with pytest.raises(UserError) as err:
            load_official("tinyunet", path)
        assert str(err.value).startswith(f"{path}: ") and message in str(err.value), str(err.value)


def test_a_preset_without_official_layout_lists_the_supported_ones(tmp_path):
    with pytest.raises(UserError, match="'unetmm-min' has no official checkpoint layout; supported: nafnet-sidd-w32, .*tinyunet"):
        load_official("unetmm-min", tmp_path / "absent.pth")


# ---------------------------------------------------------------- TLC
def gopro_tlc(train_size: int, tlc: bool = True) -> ArchSpec:
    spec = preset("nafnet-gopro-w32")
    return spec.replace(block={"type": "naf", "tlc": tlc, "train_size": train_size})


def test_gopro_presets_use_tlc_with_unchanged_parameters():
    for w in (32, 64):
        spec = preset(f"nafnet-gopro-w{w}")
        assert spec.block["tlc"] and spec.block["train_size"] == 256
        a = build_model(spec, "meta").state_dict()
        b = build_model(spec.replace(block="naf"), "meta").state_dict()
        assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    assert not preset("nafnet-sidd-w32").block["tlc"]


def test_tlc_window_follows_the_dry_run_at_the_training_size():
    """NAFNetLocal's windows (a dry run of the transcription at 256, on meta) at every level."""
    with torch.device("meta"):
        local = ref.RefNAFNetLocal(*NAF["nafnet-gopro-w32"], train_size=256)
    sizes = {}  # feature height at 256 -> window the dry run fixed
    for block in local.modules():
        if isinstance(block, ref.RefNAFBlock):
            sizes[block.conv1.out_channels // 64] = block.sca[0].kernel  # 1, 2, 4, 8, 16 by level
    assert sizes == {1: (384, 384), 2: (192, 192), 4: (96, 96), 8: (48, 48), 16: (24, 24)}
    for stride, (kh, kw) in sizes.items():
        h, w = 720 // stride, 1280 // stride
        assert tlc_window(h, w, stride, 256) == (min(h, kh), min(w, kw))
        assert tlc_window(384 // stride, 384 // stride, stride, 256) is None  # 1.5 x 256: global


def test_tlc_equals_nafnetlocal_above_the_threshold_and_global_pooling_below():
    torch.manual_seed(0)
    theirs = tame(ref.RefNAFNetLocal(*NAF["nafnet-gopro-w32"], train_size=64))  # windows from a dry run at 64
    weights = convert("nafnet-gopro-w32", theirs.state_dict())
    tlc, plain = build_model(gopro_tlc(64)), build_model(gopro_tlc(64, tlc=False))
    for net in (tlc, plain):
        net.load_state_dict(weights)
        net.double().eval()
    theirs.double()
    big = torch.randn(1, 3, 112, 128, dtype=torch.float64)  # > 1.5 x 64 = 96 on both sides
    small = torch.randn(1, 3, 64, 90, dtype=torch.float64)  # padded 64 x 96: not above 96
    with torch.no_grad():
        out = tlc(big)
        assert (out - theirs(big)).abs().max().item() <= 1e-9
        assert (out - plain(big)).abs().max().item() > 1e-4  # local pooling changed it (rounding: ~1e-14)
        assert torch.equal(tlc(small), plain(small))
        assert (tlc(small) - theirs(small)).abs().max().item() <= 1e-9


def test_tlc_acts_only_in_eval_mode():
    torch.manual_seed(0)
    tlc, plain = build_model(gopro_tlc(16)), build_model(gopro_tlc(16, tlc=False))
    randomize(tlc)
    plain.load_state_dict(tlc.state_dict())
    x = torch.randn(1, 3, 40, 48)  # padded 48 x 48 > 1.5 x 16
    assert torch.equal(tlc(x), plain(x))  # training mode: global pooling in both
    tlc.eval(), plain.eval()
    with torch.no_grad():
        assert not torch.allclose(tlc(x), plain(x))


def test_cost_model_runs_with_tlc():
    from skipsearch.costs.profile import profile

    spec = preset("nafnet-gopro-w32")
    p = profile(spec, (3, 512, 512))  # 512 > 384: local pooling on the meta device
    assert p.params == profile(spec.replace(block="naf"), (3, 256, 256), counts=False).params == 17_111_907
    assert p.macs > 0 and p.peak_activation_bytes > 0


def test_tlc_survives_the_standalone_export(tmp_path, monkeypatch):
    """model.py of an export bundle inlines naf.py: the same local pooling, the same outputs."""
    import importlib.util
    import sys

    from skipsearch.standalone import bundle_source

    spec = ArchSpec(depth=3, width=8, block={"type": "naf", "tlc": True, "train_size": 16}, head="restore", out_channels=3)
    (tmp_path / "model.py").write_text(bundle_source(spec))
    loader = importlib.util.spec_from_file_location("tlc_bundle", tmp_path / "model.py")
    module = importlib.util.module_from_spec(loader)
    monkeypatch.setitem(sys.modules, "tlc_bundle", module)  # dataclasses look their module up
    loader.loader.exec_module(module)
    ours = tame(build_model(spec)).eval()
    theirs = module.build().eval()
    theirs.load_state_dict(ours.state_dict())
    plain = build_model(spec.replace(block="naf")).eval()
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 40, 56)  # padded 40 x 56 > 1.5 x 16
    with torch.no_grad():
        assert torch.equal(theirs(x), ours(x)) and not torch.allclose(ours(x), plain(x))

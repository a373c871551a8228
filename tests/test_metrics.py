"""Metrics and losses against hand-computed cases (and scikit-image's SSIM)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from skipsearch.tasks import losses
from skipsearch.tasks.metrics import psnr, segmentation_metrics, ssim


def test_dice_iou_binary_by_hand():
    pred = torch.tensor([[[1, 1], [0, 0]]])
    label = torch.tensor([[[1, 0], [0, 0]]])
    m = segmentation_metrics(pred, label, 2)
    # foreground: |P| = 2, |T| = 1, |P & T| = 1; background: |P| = 2, |T| = 3, |P & T| = 2
    assert m["dice"].item() == pytest.approx(2 / 3)
    assert m["iou"].item() == pytest.approx(1 / 2)
    assert m["mdice"].item() == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["miou"].item() == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_empty_prediction_and_label_score_one():
    z = torch.zeros(1, 3, 3, dtype=torch.long)
    m = segmentation_metrics(z, z, 2)
    assert m["dice"].item() == 1 and m["iou"].item() == 1


def test_multiclass_means_by_hand():
    pred = torch.tensor([[[0, 1, 2, 2]]])
    label = torch.tensor([[[0, 1, 1, 2]]])
    m = segmentation_metrics(pred, label, 3)
    # class 1: P={1}, T={1,2} -> dice 2/3, iou 1/2; class 2: P={2,3}, T={3} -> dice 2/3, iou 1/2; class 0: 1, 1
    assert m["dice"].item() == pytest.approx(2 / 3)
    assert m["iou"].item() == pytest.approx(1 / 2)
    assert m["mdice"].item() == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_per_image_average():
    pred = torch.tensor([[[1, 1]], [[0, 0]]])
    label = torch.tensor([[[1, 1]], [[1, 1]]])
    assert segmentation_metrics(pred, label, 2)["dice"].tolist() == [1.0, 0.0]


def test_psnr_by_hand():
    target = torch.full((2, 3, 4, 4), 0.5)
    assert psnr(target + 0.1, target).tolist() == pytest.approx([20.0, 20.0])
    assert psnr(target + 0.01, target)[0].item() == pytest.approx(40.0)


def test_ssim_identical_is_one_and_matches_scikit_image():
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 40, 48, generator=g, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(a.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert ssim(a, a).item() == pytest.approx(1.0)
    ref = structural_similarity(
        a[0].numpy(), b[0].numpy(), channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(b, a).item() == pytest.approx(ref, abs=1e-6)


def test_psnr_loss_is_minus_mean_psnr():
    g = torch.Generator().manual_seed(1)
    t = torch.rand(3, 3, 8, 8, generator=g)
    p = t + 0.05 * torch.randn(t.shape, generator=g)
    assert losses.psnr_loss(p, t).item() == pytest.approx(-psnr(p, t).mean().item(), rel=1e-4)


def test_bce_dice_rewards_correct_logits():
    label = torch.tensor([[[1, 0], [0, 1]]])
    good = torch.tensor([[[[9.0, -9.0], [-9.0, 9.0]]]])
    assert losses.bce_dice(good, label).item() < 0.01 < losses.bce_dice(-good, label).item()


def test_ce_dice_rewards_correct_logits():
    label = torch.tensor([[[0, 1, 2]]])
    good = torch.nn.functional.one_hot(label, 3).permute(0, 3, 1, 2).float() * 20 - 10
    assert losses.ce_dice(good, label).item() < 0.01
    assert math.isfinite(losses.ce_dice(-good, label).item())


def test_metrics_on_numpy_equivalent():
    rng = np.random.default_rng(0)
    p, t = rng.integers(0, 2, (1, 5, 7)), rng.integers(0, 2, (1, 5, 7))
    inter = (p & t).sum()
    expected = 2 * inter / (p.sum() + t.sum())
    assert segmentation_metrics(torch.from_numpy(p), torch.from_numpy(t), 2)["dice"].item() == pytest.approx(expected)

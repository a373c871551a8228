"""Validation metrics, computed per image and averaged over the images.

Segmentation (labels are class indices, predictions already arg-maxed or thresholded):
``dice`` / ``iou`` average the foreground classes (class 1 for binary tasks), ``mdice`` /
``miou`` average every class, background included; a multi-class task with class names
also gives ``dice_NAME`` per foreground class. A class absent from both the
prediction and the label of an image scores 1 for that image.
Restoration (values in [0, 1]): ``psnr`` in dB with data range 1; ``ssim`` with an 11x11
Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, averaged over channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def overlap_scores(pred: torch.Tensor, label: torch.Tensor, num_classes: int) -> dict[str, torch.Tensor]:
    """Per-image Dice and IoU for each class: tensors of shape (N, num_classes)."""
    n = pred.shape[0]
    p = F.one_hot(pred.reshape(n, -1).long(), num_classes).bool()
    t = F.one_hot(label.reshape(n, -1).long(), num_classes).bool()
    inter = (p & t).sum(1).double()
    ps, ts = p.sum(1).double(), t.sum(1).double()
    union = ps + ts - inter
    empty = (ps + ts) == 0
    dice = torch.where(empty, torch.ones_like(inter), 2 * inter / (ps + ts).clamp_min(1))
    iou = torch.where(empty, torch.ones_like(inter), inter / union.clamp_min(1))
    return {"dice": dice, "iou": iou}


def segmentation_metrics(
    pred: torch.Tensor, label: torch.Tensor, num_classes: int, names: tuple[str, ...] | None = None
) -> dict[str, torch.Tensor]:
    """Per-image dice, iou (foreground classes) and mdice, miou (all classes): shape (N,);
    with class `names` and more than two classes, dice_NAME per foreground class too."""
    scores = overlap_scores(pred, label, num_classes)
    out = {
        "dice": scores["dice"][:, 1:].mean(1),
        "iou": scores["iou"][:, 1:].mean(1),
        "mdice": scores["dice"].mean(1),
        "miou": scores["iou"].mean(1),
    }
    if names and num_classes > 2:
        out.update(_by_name(scores["dice"], names))
    return out


def class_keys(names: tuple[str, ...]) -> list[str]:
    """dice_NAME for each foreground class: the name lower-cased, other than letters and
    digits made '_', its id appended where two names would give one key."""
    keys: list[str] = []
    for i, name in enumerate(names[1:], start=1):
        key = "dice_" + ("".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_") or str(i))
        keys.append(f"{key}_{i}" if key in keys else key)
    return keys


def _by_name(dice: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {key: dice[:, i] for i, key in enumerate(class_keys(names), start=1)}


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for values in [0, 1]: shape (N,)."""
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004, Gaussian window, 'valid' region): shape (N,)."""
    x, y = pred.double(), target.double()
    c = x.shape[1]
    w = _gaussian_window().to(x.device).expand(c, 1, 11, 11)
    mean = lambda t: F.conv2d(t, w, groups=c)  # noqa: E731
    mx, my = mean(x), mean(y)
    vx, vy, cov = mean(x * x) - mx**2, mean(y * y) - my**2, mean(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)

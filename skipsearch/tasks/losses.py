"""Training losses: BCE + Dice (binary), CE + Dice (multi-class), NAFNet's PSNR loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def soft_dice_loss(probs: torch.Tensor, onehot: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice, per image and class, averaged (smoothed by eps)."""
    dims = tuple(range(2, probs.dim()))
    inter = (probs * onehot).sum(dims)
    total = probs.sum(dims) + onehot.sum(dims)
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


def bce_dice(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Binary: logits (N, 1, H, W), label (N, H, W) in {0, 1}."""
    target = label.unsqueeze(1).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, target) + soft_dice_loss(torch.sigmoid(logits), target)


def ce_dice(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Multi-class: logits (N, K, H, W), label (N, H, W) of class indices (or one axis
    more for volumes: (N, K, D, H, W) and (N, D, H, W))."""
    channels_last = F.one_hot(label.long(), logits.shape[1])
    onehot = channels_last.movedim(-1, 1).to(logits.dtype)
    return F.cross_entropy(logits, label.long()) + soft_dice_loss(logits.softmax(1), onehot)


def psnr_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """NAFNet's PSNRLoss: (10 / ln 10) x mean over images of log(MSE + 1e-8); minimising it
    maximises the mean per-image PSNR."""
    mse = (pred - target).pow(2).flatten(1).mean(1)
    return 10 / math.log(10) * torch.log(mse + 1e-8).mean()

"""`photos-denoise`: Gaussian denoising on the natural photos bundled with scikit-image.

No download: the photos ship inside the scikit-image wheel. The split is by image, never
by patch: training draws random crops (with fresh noise each batch) from the training
photos; validation uses fixed crops of the other photos with fixed noise. Grey photos
are repeated to three channels; photos smaller than the crop are upscaled.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from .base import TASKS, Batch, Task, check_int, check_number

TRAIN = (
    "astronaut",
    "camera",
    "coins",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "moon",
    "brick",
    "grass",
    "gravel",
    "cell",
    "stereo_motorcycle",
)
VAL = ("chelsea", "coffee", "clock")
VAL_CROPS = 4  # fixed crops per validation photo


@functools.lru_cache(maxsize=64)
def _photo(name: str) -> tuple[torch.Tensor, ...]:
    """(3, H, W) float tensors of a bundled photo (two for the stereo pair)."""
    from skimage import data

    out = getattr(data, name)()
    arrays = out[:2] if isinstance(out, tuple) else (out,)
    tensors = []
    for a in arrays:
        a = np.asarray(a, dtype=np.float32) / 255.0
        a = np.repeat(a[None], 3, 0) if a.ndim == 2 else a[..., :3].transpose(2, 0, 1)
        tensors.append(torch.from_numpy(np.ascontiguousarray(a)))
    return tuple(tensors)


def _fit(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = img.shape[-2:]
    scale = max(size[0] / h, size[1] / w)
    if scale <= 1:
        return img
    new = (max(size[0], round(h * scale)), max(size[1], round(w * scale)))
    return F.interpolate(img[None], size=new, mode="bilinear", align_corners=False)[0]


@TASKS.register("photos-denoise")
class PhotosDenoise(Task):
    kind = "restore"

    def __init__(self, sigma: float = 25.0, val_images: tuple[str, ...] = VAL, seed: int = 0) -> None:
        sigma = check_number(self.name, "sigma", sigma, 0, 255)  # noise std on a 0-255 scale
        seed = check_int(self.name, "seed", seed, 0)
        known = TRAIN + VAL
        if isinstance(val_images, str) or not isinstance(val_images, list | tuple) or not val_images:
            allowed = f"a non-empty list of photo names ({', '.join(known)})"
            raise UserError(f"task option val_images: {val_images!r}; allowed: {allowed}")
        bad = [v for v in val_images if v not in known]
        if bad:
            raise UserError(f"task option val_images: unknown photo {bad[0]!r}; allowed: {', '.join(known)}")
        self.sigma, self.seed = sigma / 255.0, seed
        self.val_names = tuple(val_images)
        self.train_names = tuple(n for n in known if n not in self.val_names)

    def _images(self, names: tuple[str, ...], size: tuple[int, int]) -> list[torch.Tensor]:
        return [_fit(img, size) for n in names for img in _photo(n)]

    def train_batches(self, size: tuple[int, int], batch: int, seed: int) -> Iterator[Batch]:
        images = self._images(self.train_names, size)
        g = torch.Generator().manual_seed(seed)
        h, w = size

        def stream() -> Iterator[Batch]:
            while True:
                crops = []
                for i in torch.randint(len(images), (batch,), generator=g).tolist():
                    img = images[i]
                    y = int(torch.randint(img.shape[1] - h + 1, (1,), generator=g))
                    x = int(torch.randint(img.shape[2] - w + 1, (1,), generator=g))
                    crops.append(img[:, y : y + h, x : x + w])
                clean = torch.stack(crops)
                noisy = clean + self.sigma * torch.randn(clean.shape, generator=g)
                yield noisy, clean

        return stream()

    def val_set(self, size: tuple[int, int]) -> Batch:
        h, w = size
        crops = []
        for img in self._images(self.val_names, size):
            ys = np.linspace(0, img.shape[1] - h, 2).astype(int)
            xs = np.linspace(0, img.shape[2] - w, VAL_CROPS // 2).astype(int)
            crops += [img[:, y : y + h, x : x + w] for y in ys for x in xs]
        clean = torch.stack(crops)
        g = torch.Generator().manual_seed(self.seed + 12345)
        return clean + self.sigma * torch.randn(clean.shape, generator=g), clean

    def describe(self) -> dict:
        return {**super().describe(), "sigma": round(self.sigma * 255, 3), "val_images": list(self.val_names)}

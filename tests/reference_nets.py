"""Independent, deliberately plain transcriptions of the official networks (test oracles).

Written from the architecture reference, not from skipsearch's code: each network is
spelled out layer by layer the way its paper/official code lays it out, so that the
presets can be checked against them for parameter counts and for identical outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# ---------------------------------------------------------------- NAFNet
class RefLN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        mu = x.mean(1, keepdim=True)
        var = ((x - mu) ** 2).mean(1, keepdim=True)
        return self.weight[None, :, None, None] * (x - mu) / torch.sqrt(var + 1e-6) + self.bias[None, :, None, None]


class RefNAFBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.n1, self.n2 = RefLN(c), RefLN(c)
        self.c1 = nn.Conv2d(c, 2 * c, 1)
        self.c2 = nn.Conv2d(2 * c, 2 * c, 3, 1, 1, groups=2 * c)
        self.ca = nn.Conv2d(c, c, 1)
        self.c3 = nn.Conv2d(c, c, 1)
        self.c4 = nn.Conv2d(c, 2 * c, 1)
        self.c5 = nn.Conv2d(c, c, 1)

    def forward(self, inp):
        x = self.c2(self.c1(self.n1(inp)))
        x = x[:, : x.shape[1] // 2] * x[:, x.shape[1] // 2 :]
        x = x * self.ca(x.mean((2, 3), keepdim=True))
        y = inp + self.c3(x) * self.beta
        x = self.c4(self.n2(y))
        x = x[:, : x.shape[1] // 2] * x[:, x.shape[1] // 2 :]
        return y + self.c5(x) * self.gamma


class RefNAFNet(nn.Module):
    def __init__(self, width, enc, mid, dec):
        super().__init__()
        self.intro = nn.Conv2d(3, width, 3, 1, 1)
        self.encs, self.downs, self.ups, self.decs = (nn.ModuleList() for _ in range(4))
        c = width
        for n in enc:
            self.encs.append(nn.Sequential(*[RefNAFBlock(c) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, 2))
            c *= 2
        self.mid = nn.Sequential(*[RefNAFBlock(c) for _ in range(mid)])
        for n in dec:  # deepest first
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decs.append(nn.Sequential(*[RefNAFBlock(c) for _ in range(n)]))
        self.ending = nn.Conv2d(width, 3, 3, 1, 1)
        self.pad = 2 ** len(enc)

    def forward(self, inp):
        h, w = inp.shape[-2:]
        inp = F.pad(inp, (0, (self.pad - w % self.pad) % self.pad, 0, (self.pad - h % self.pad) % self.pad))
        x = self.intro(inp)
        skips = []
        for e, d in zip(self.encs, self.downs, strict=True):
            x = e(x)
            skips.append(x)
            x = d(x)
        x = self.mid(x)
        for u, d, s in zip(self.ups, self.decs, skips[::-1], strict=True):
            x = d(u(x) + s)
        return (self.ending(x) + inp)[..., :h, :w]


# ---------------------------------------------------------------- TinyU-Net
def pw(c1, c2):
    return nn.Sequential(nn.Conv2d(c1, c2, 1, bias=False), nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03), nn.GELU())


class RefCMRF(nn.Module):
    def __init__(self, c1, c2, groups=8):
        super().__init__()
        k = c2 // (2 * groups)
        self.first = pw(c1, c2 // groups)
        self.dws = nn.ModuleList(
            nn.Sequential(nn.Conv2d(k, k, 3, 1, 1, groups=k, bias=False), nn.BatchNorm2d(k, eps=1e-3, momentum=0.03))
            for _ in range(groups - 1)
        )
        self.last = pw(c2 // 2, c2)
        self.res = c1 == c2

    def forward(self, x):
        y = self.first(x)
        outs = [y[:, 0::2] + y[:, 1::2]]
        z = y[:, 1::2]
        for dw in self.dws:
            z = dw(z)
            outs.append(z)
        y = self.last(torch.cat(outs, 1))
        return x + y if self.res else y


class RefTinyUNet(nn.Module):
    def __init__(self, cin=3, classes=2):
        super().__init__()
        ch = [64, 128, 256, 512]
        self.enc = nn.ModuleList([RefCMRF(cin, 64), RefCMRF(64, 128), RefCMRF(128, 256), RefCMRF(256, 512)])
        self.dec = nn.ModuleList([RefCMRF(1024, 512), RefCMRF(768, 256), RefCMRF(384, 128), RefCMRF(192, 64)])
        self.final = nn.Conv2d(ch[0], classes, 1)

    def forward(self, x):
        skips = []
        for e in self.enc:
            x = e(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        for d, s in zip(self.dec, skips[::-1], strict=True):
            x = d(torch.cat([F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False), s], 1))
        return self.final(x)


# ---------------------------------------------------------------- U-Net / UNet++ (official Keras)
def unit(c1, c2):
    return nn.Sequential(nn.Conv2d(c1, c2, 3, 1, 1), nn.ReLU(), nn.Conv2d(c2, c2, 3, 1, 1), nn.ReLU())


F_KERAS = [32, 64, 128, 256, 512]


class RefUNet(nn.Module):
    def __init__(self):
        super().__init__()
        f = F_KERAS
        self.down = nn.ModuleList([unit(1, f[0])] + [unit(f[i - 1], f[i]) for i in range(1, 5)])
        self.ups = nn.ModuleList(nn.ConvTranspose2d(f[i + 1], f[i], 2, 2) for i in (3, 2, 1, 0))
        self.dec = nn.ModuleList(unit(2 * f[i], f[i]) for i in (3, 2, 1, 0))
        self.out = nn.Conv2d(f[0], 1, 1)

    def forward(self, x):
        skips = []
        for i, u in enumerate(self.down):
            x = u(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, dec, s in zip(self.ups, self.dec, skips[-2::-1], strict=True):
            x = dec(torch.cat([up(x), s], 1))
        return self.out(x)


class RefUNetPP(nn.Module):
    """Nodes X[i][j]; computed anti-diagonal by anti-diagonal as in the official code."""

    def __init__(self):
        super().__init__()
        f = F_KERAS
        self.node = nn.ModuleDict()
        self.up = nn.ModuleDict()
        for i in range(5):
            self.node[f"{i}0"] = unit(1 if i == 0 else f[i - 1], f[i])
        for d in range(1, 5):
            for j in range(1, d + 1):
                i = d - j
                self.up[f"{i}{j}"] = nn.ConvTranspose2d(f[i + 1], f[i], 2, 2)
                self.node[f"{i}{j}"] = unit(f[i] * (j + 1), f[i])
        self.out = nn.Conv2d(f[0], 1, 1)

    def forward(self, x):
        X = {}
        for d in range(5):
            X[d, 0] = self.node[f"{d}0"](x if d == 0 else F.max_pool2d(X[d - 1, 0], 2))
            for j in range(1, d + 1):
                i = d - j
                up = self.up[f"{i}{j}"](X[i + 1, j - 1])
                X[i, j] = self.node[f"{i}{j}"](torch.cat([up] + [X[i, k] for k in range(j)], 1))
        return self.out(X[0, 4])

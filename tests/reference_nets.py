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


class RefGlobalMean(nn.Module):
    def forward(self, x):
        return x.mean((2, 3), keepdim=True)


class RefLocalMean(nn.Module):
    """NAFNetLocal's pooling, spelled out: the window is fixed at the first call (the dry run
    at the training size) as the feature size there times base // train; afterwards the mean
    over every window position (stride 1), the border replicated, or the global mean when
    the window covers the whole map."""

    def __init__(self, base, train):
        super().__init__()
        self.base, self.train_size, self.kernel = base, train, None

    def forward(self, x):
        h, w = x.shape[-2:]
        if self.kernel is None:
            self.kernel = (h * self.base // self.train_size, w * self.base // self.train_size)
        kh, kw = self.kernel
        if kh >= h and kw >= w:
            return x.mean((2, 3), keepdim=True)
        out = F.avg_pool2d(x, (min(kh, h), min(kw, w)), stride=1)
        dh, dw = h - out.shape[-2], w - out.shape[-1]
        return F.pad(out, (dw // 2, (dw + 1) // 2, dh // 2, (dh + 1) // 2), mode="replicate")


class RefNAFBlock(nn.Module):
    """Attribute names as in the official NAFBlock (the state_dict names of its checkpoints)."""

    def __init__(self, c):
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.norm1, self.norm2 = RefLN(c), RefLN(c)
        self.conv1 = nn.Conv2d(c, 2 * c, 1)
        self.conv2 = nn.Conv2d(2 * c, 2 * c, 3, 1, 1, groups=2 * c)
        self.sca = nn.Sequential(RefGlobalMean(), nn.Conv2d(c, c, 1))
        self.conv3 = nn.Conv2d(c, c, 1)
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(c, c, 1)

    def forward(self, inp):
        x = self.conv2(self.conv1(self.norm1(inp)))
        x = x[:, : x.shape[1] // 2] * x[:, x.shape[1] // 2 :]
        x = x * self.sca(x)
        y = inp + self.conv3(x) * self.beta
        x = self.conv4(self.norm2(y))
        x = x[:, : x.shape[1] // 2] * x[:, x.shape[1] // 2 :]
        return y + self.conv5(x) * self.gamma


class RefNAFNet(nn.Module):
    """Module names as in the official NAFNet: intro, encoders, downs, middle_blks, ups
    and decoders (both deepest level first), ending."""

    def __init__(self, width, enc, mid, dec):
        super().__init__()
        self.intro = nn.Conv2d(3, width, 3, 1, 1)
        self.encoders, self.downs, self.ups, self.decoders = (nn.ModuleList() for _ in range(4))
        c = width
        for n in enc:
            self.encoders.append(nn.Sequential(*[RefNAFBlock(c) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, 2))
            c *= 2
        self.middle_blks = nn.Sequential(*[RefNAFBlock(c) for _ in range(mid)])
        for n in dec:  # deepest first
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[RefNAFBlock(c) for _ in range(n)]))
        self.ending = nn.Conv2d(width, 3, 3, 1, 1)
        self.pad = 2 ** len(enc)

    def forward(self, inp):
        h, w = inp.shape[-2:]
        inp = F.pad(inp, (0, (self.pad - w % self.pad) % self.pad, 0, (self.pad - h % self.pad) % self.pad))
        x = self.intro(inp)
        skips = []
        for e, d in zip(self.encoders, self.downs, strict=True):
            x = e(x)
            skips.append(x)
            x = d(x)
        x = self.middle_blks(x)
        for u, d, s in zip(self.ups, self.decoders, skips[::-1], strict=True):
            x = d(u(x) + s)
        return (self.ending(x) + inp)[..., :h, :w]


class RefNAFNetLocal(RefNAFNet):
    """NAFNet with TLC: every SCA pooling becomes RefLocalMean with base = int(1.5 train),
    its window fixed by one dry run at (1, 3, train, train) in eval mode."""

    def __init__(self, width, enc, mid, dec, train_size=256):
        super().__init__(width, enc, mid, dec)
        for m in self.modules():
            if isinstance(m, RefNAFBlock):
                m.sca[0] = RefLocalMean(int(train_size * 1.5), train_size)
        self.eval()
        with torch.no_grad():
            self(torch.rand(1, 3, train_size, train_size))


# ---------------------------------------------------------------- TinyU-Net
class RefConvBN(nn.Module):
    """The official Conv unit: conv (no bias), BatchNorm (eps 1e-3, momentum 0.03), GELU or none."""

    def __init__(self, c1, c2, k, groups=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, 1, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.GELU() if act else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class RefCMRF(nn.Module):
    """Names as in the official CMRF: pwconv1, m (the depthwise cascade), pwconv2."""

    def __init__(self, c1, c2, groups=8):
        super().__init__()
        k = c2 // (2 * groups)
        self.pwconv1 = RefConvBN(c1, c2 // groups, 1)
        self.m = nn.ModuleList(RefConvBN(k, k, 3, groups=k, act=False) for _ in range(groups - 1))
        self.pwconv2 = RefConvBN(c2 // 2, c2, 1)
        self.res = c1 == c2

    def forward(self, x):
        y = self.pwconv1(x)
        outs = [y[:, 0::2] + y[:, 1::2]]
        z = y[:, 1::2]
        for dw in self.m:
            z = dw(z)
            outs.append(z)
        y = self.pwconv2(torch.cat(outs, 1))
        return x + y if self.res else y


class RefLevel(nn.Module):
    """The official UNetEncoder / UNetDecoder: one CMRF named cmrf (pooling and resizing are
    parameter-free and done by RefTinyUNet.forward)."""

    def __init__(self, c1, c2):
        super().__init__()
        self.cmrf = RefCMRF(c1, c2)


class RefTinyUNet(nn.Module):
    """Names as in the official TinyUNet: encoder1-4, decoder4-1, final_conv."""

    def __init__(self, cin=3, classes=2):
        super().__init__()
        ch = [64, 128, 256, 512]
        for i, (c1, c2) in enumerate(zip([cin, *ch[:-1]], ch, strict=True), 1):
            setattr(self, f"encoder{i}", RefLevel(c1, c2))
        for i, (c1, c2) in reversed(list(enumerate(zip([192, 384, 768, 1024], ch, strict=True), 1))):
            setattr(self, f"decoder{i}", RefLevel(c1, c2))
        self.final_conv = nn.Conv2d(ch[0], classes, 1)

    def forward(self, x):
        skips = []
        for i in range(1, 5):
            x = getattr(self, f"encoder{i}").cmrf(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        for i in range(4, 0, -1):
            up = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
            x = getattr(self, f"decoder{i}").cmrf(torch.cat([up, skips[i - 1]], 1))
        return self.final_conv(x)


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


# The official configurations of the transcribed networks, by preset name.
SIDD = ([2, 2, 4, 8], 12, [2, 2, 2, 2])
GOPRO = ([1, 1, 1, 28], 1, [1, 1, 1, 1])
NAF = {
    "nafnet-sidd-w32": (32, *SIDD),
    "nafnet-sidd-w64": (64, *SIDD),
    "nafnet-gopro-w32": (32, *GOPRO),
    "nafnet-gopro-w64": (64, *GOPRO),
}


def reference(name: str) -> nn.Module:
    """The transcription of the official network a preset claims to be."""
    if name in NAF:
        return RefNAFNet(*NAF[name])
    return {"tinyunet": RefTinyUNet, "unet": RefUNet, "unetpp": RefUNetPP}[name]()

"""How fast the cost model is: one profile on meta, and 1,000 random specs of the space.

    python bench/profile_speed.py [--n 1000] [--no-write]

Side by side in one run: profile() (one meta forward that tracks memory, counts FLOPs and
applies thop's rules) against the straightforward way (thop on a deep copy, then
FlopCounterMode, then the memory pass), each repeated and the median kept.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _report import machine, write_section  # noqa: E402

from skipsearch import ArchSpec, build_model, preset  # noqa: E402
from skipsearch.costs import count_flops, count_macs  # noqa: E402
from skipsearch.costs.memory import measure  # noqa: E402
from skipsearch.costs.profile import profile  # noqa: E402


def random_spec(rng: random.Random) -> ArchSpec:
    """A point of the skip-design space: 5 designs (MSIAM at min/mid/max), naf or cmrf
    (N in 2, 4, 8, 16), width 8-64, depth 3-5, 1-2 blocks per level."""
    depth = rng.choice([3, 4, 5])
    family = rng.choice(["naf", "cmrf"])
    if family == "cmrf":
        n = rng.choice([2, 4, 8, 16])
        width = rng.choice([w for w in range(8, 65, 8) if w % (2 * n) == 0])
        block = {"type": "cmrf", "n": n}
    else:
        width, block = rng.choice(range(8, 65, 8)), {"type": "naf"}
    skip = rng.choice(["none", "plain", "msiam_iem", "sdi", "dense"])
    skip_d = {"type": skip}
    if skip == "msiam_iem":
        skip_d["target"] = rng.choice(["min", "mid", "max"])
    blocks = [rng.choice([1, 2]) for _ in range(depth)]
    return ArchSpec(
        depth=depth,
        width=width,
        block=block,
        skip=skip_d,
        enc_blocks=blocks,
        dec_blocks=blocks,
        mid_blocks=rng.choice([1, 2]),
        in_channels=3,
        out_channels=1,
    )


def three_pass(spec: ArchSpec, shape: tuple[int, ...]) -> None:
    model = build_model(spec, "meta").eval()
    count_macs(model, shape, "meta")
    count_flops(model, shape, "meta")
    measure(model, torch.empty(shape, device="meta"))


def median_ms(fn, repeat: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows = ["| spec | profile() ms | thop + FlopCounterMode + memory pass ms | ratio |", "|---|---|---|---|"]
    for name in ["tiny-naf", "tinyunet", "unet", "unetpp", "nafnet-sidd-w32", "unetmm-min", "sdi-naf-w32", "nafnet-gopro-w64"]:
        spec = preset(name)
        shape = (1, spec.in_channels, 256, 256)
        ours = median_ms(lambda spec=spec: profile(spec))
        naive = median_ms(lambda spec=spec, shape=shape: three_pass(spec, shape))
        rows.append(f"| {name} | {ours:.1f} | {naive:.1f} | {naive / ours:.1f}x |")
        print(rows[-1], flush=True)
    rng = random.Random(0)
    specs = [random_spec(rng) for _ in range(args.n)]
    t = time.perf_counter()
    for spec in specs:
        profile(spec)
    total = time.perf_counter() - t
    t = time.perf_counter()
    for spec in specs:
        profile(spec, counts=False)
    mem_only = time.perf_counter() - t
    line = (
        f"{args.n} random specs of the space (seeded), profile() each on meta at 256x256: {total:.1f} s "
        f"({1000 * total / args.n:.1f} ms a spec); memory and params only (counts=False): {mem_only:.1f} s."
    )
    print(line)
    body = (
        "## Cost-model speed\n\n"
        f"`python bench/profile_speed.py --n {args.n}` on {machine()}. Meta device, 256x256, batch 1, after import\n"
        "and one warm-up call; median of 7. Both columns compute params, MACs (thop's rules), FLOPs\n"
        "(FlopCounterMode's formulas) and the skip-memory timeline.\n\n" + "\n".join(rows) + "\n\n" + line
    )
    if not args.no_write:
        write_section("profile-speed", body)


if __name__ == "__main__":
    main()

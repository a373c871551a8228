"""nnunet-raw's data path: decoding into the disk cache, patch sampling from it, and
sliding-window validation, with the process's memory beside the dataset's size.

    python bench/nnunet_raw.py [--cases 24] [--shape 64x96x96] [--patch 48] [--write]

A dataset of noise volumes with an ellipsoid lesion (.nii.gz, float32) is written to a
temporary folder by a child process. Then, in this process: the cache is built (cold:
every case decoded and checked), 200 batches of 2 patches are drawn from it
memory-mapped, and every validation case is scored whole by sliding windows with a
small 3-D U-Net. Resident memory is read after each phase, the process's own (anonymous)
apart from the pages of the memory-mapped cache (file-backed, which the OS can drop):
the process's own memory should grow by about a case, never by the dataset.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def rss() -> str:
    """The process's own resident memory now (RssAnon) and the file pages it maps
    (RssFile: the memory-mapped cache, page cache the OS can drop), and the peak."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    kib = lambda k: int(fields[k].split()[0]) * 1024  # noqa: E731
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    from skipsearch.tasks.raw_cache import amount

    return f"{amount(kib('RssAnon'))} | {amount(kib('RssFile'))} | {amount(peak)}"


def main() -> None:
    import torch

    from skipsearch.model import build_model
    from skipsearch.tasks import make_task
    from skipsearch.tasks.raw_cache import amount, disk_bytes
    from skipsearch.testing import small_spec
    from skipsearch.train import Budget, val_metrics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=24)
    ap.add_argument("--shape", default="96x160x160")
    ap.add_argument("--patch", type=int, default=48)
    ap.add_argument("--write", action="store_true", help="write the figures into BENCHMARKS.md")
    args = ap.parse_args()
    torch.set_num_threads(2)
    shape = tuple(int(s) for s in args.shape.split("x"))
    patch = (args.patch,) * 3
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SKIPSEARCH_CACHE"] = str(Path(tmp) / "cache")
        t = time.perf_counter()
        root = Path(tmp) / "Dataset001_Bench"
        subprocess.run([sys.executable, __file__, "--make", str(root), str(args.cases), args.shape], check=True)
        written = time.perf_counter() - t
        gz = sum(p.stat().st_size for p in root.rglob("*.nii.gz"))
        base = rss()
        t = time.perf_counter()
        task = make_task("nnunet-raw", data=str(root))
        task.check(patch)
        build = time.perf_counter() - t
        after_build = rss()
        stream = task.train_batches(patch, 2, seed=0)
        t = time.perf_counter()
        fg = 0
        for _ in range(200):
            _, y = next(stream)
            fg += int((y[1] > 0).any())
        sampling = time.perf_counter() - t
        after_patches = rss()
        spec = task.adapt(small_spec("conv", "plain", 3, spatial_dims=3))
        model = build_model(spec)
        budget = Budget(batch=2, size=patch)
        t = time.perf_counter()
        val_metrics(model, task, task.val_set(patch), budget, torch.device("cpu"))
        scoring = time.perf_counter() - t
        after_val = rss()
        need, what = task.data_footprint(patch)
    n_val = len(task.val_indices)
    voxels = shape[0] * shape[1] * shape[2]
    lines = [
        f"{args.cases} cases of {args.shape} (.nii.gz, {amount(gz)}), one channel, two classes; "
        f"patch {args.patch}^3, batch 2; {n_val} validation cases (fold 0). Machine: {_machine()}.",
        "",
        "| phase | time | resident after it: own (anonymous) | mapped cache files | peak (ru_maxrss) |",
        "|---|---:|---:|---:|---:|",
        f"| write the dataset (a child process; not part of training) | {written:.1f} s | {base} |",
        f"| build the cache, cold ({args.cases} cases decoded, checked, {amount(disk_bytes(task.layout))} on disk) "
        f"| {build:.1f} s ({build / args.cases * 1000:.0f} ms/case) | {after_build} |",
        f"| 200 batches of 2 patches, memory-mapped | {sampling:.2f} s ({400 / sampling:,.0f} patches/s); "
        f"{fg}/200 forced patches hold foreground | {after_patches} |",
        f"| sliding-window validation, {n_val} whole cases, depth-3 conv U-Net width 8 "
        f"| {scoring:.1f} s ({scoring / n_val:.1f} s/case) | {after_val} |",
        "",
        f"One decoded case is {amount(voxels * 5)} on disk; the dataset {amount(disk_bytes(task.layout))}. Reported "
        f"before training as the data's memory: {amount(need)} ({what}). Read the 'own' column: what the process "
        "holds itself (decoding keeps a case or two in the allocator, patches add nothing visible, validation one "
        "case with its logits); the mapped column is the OS's page cache of the cache files, dropped under pressure.",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        from _report import write_section

        write_section(
            "nnunet-raw", "## nnU-Net raw datasets: cache, patches, sliding windows\n\n`python bench/nnunet_raw.py`\n\n" + body
        )


def make(root: Path, cases: int, shape: tuple[int, ...]) -> None:
    """Noise volumes, each with an ellipsoid lesion of label 1 (fast to write at any size)."""
    import json

    import nibabel
    import numpy as np

    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    for i in range(cases):
        rng = np.random.default_rng(i)
        centre, radii = rng.uniform(-0.4, 0.4, 3), rng.uniform(0.15, 0.35, 3)
        label = (((grid - centre[:, None, None, None]) / radii[:, None, None, None]) ** 2).sum(0) < 1
        image = rng.normal(0, 1, shape).astype(np.float32) + 2 * label
        for name, arr in ((f"imagesTr/c{i:03d}_0000", image), (f"labelsTr/c{i:03d}", label.astype(np.uint8))):
            nibabel.save(nibabel.Nifti1Image(arr.transpose(2, 1, 0), np.eye(4)), str(root / f"{name}.nii.gz"))
    meta = {"channel_names": {"0": "MR"}, "labels": {"background": 0, "lesion": 1}, "numTraining": cases}
    (root / "dataset.json").write_text(json.dumps({**meta, "file_ending": ".nii.gz"}))


def _machine() -> str:
    from _report import machine

    return machine()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--make"]:
        make(Path(sys.argv[2]), int(sys.argv[3]), tuple(int(s) for s in sys.argv[4].split("x")))
    else:
        main()

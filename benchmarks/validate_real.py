"""Validate napari-fidreg on real fiducial data (data folder as an argument; nothing is copied).

    .venv/bin/python benchmarks/validate_real.py ../shared/data --out docs/validation.md

1. Bintu et al. 2018 bead stacks: every round registered to H11R11 and compared with the
   authors' own bead-fit drift (authors_drift.csv: columns named z, x, y hold axes (z, y, x)
   of the stacks, values are displacements = minus our shift), next to the authors' own
   disagreement between their two estimates.
2. Closure: d(A,B) + d(B,C) - d(A,C) for triples of rounds, d(X,Y) = shift to apply to Y
   to align it onto X.
3. Known offsets on real texture: real stacks shifted by known sub-pixel offsets (up to
   +-15 px in y/x, +-5 planes in z, bounded by the stack's size), independent noise added
   to both copies; the offsets must be recovered.
4. The same with a block grid: every inlier block against the known offset, without and
   with refine_blocks.
5. Real 2D pairs (pyHiM MIPs, MERlin beads) registered as single-plane 3D stacks, against
   pyHiM's published shifts, and for MERlin against the beads' own centroid displacements
   (with scikit-image's phase correlation beside them).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from _report import write_report
from napari_fidreg.core import Params, register
from napari_fidreg.core.writers import atomic_write_bytes

REF_ROUND = "H11R11"
NOTES_MARKER = "<!-- reading: kept when validate_real.py rewrites the tables above -->"


def rounds(fov: Path) -> list[str]:
    names = [p.name[: -len("_beads.tif")] for p in fov.glob("H*R*_beads.tif")]
    return sorted(names, key=lambda n: int(n.split("R")[-1]))


def load(path: Path) -> np.ndarray:
    return tifffile.imread(path)


def authors_shifts(fov: Path) -> dict[str, dict[str, np.ndarray]]:
    """Per round: authors' est1, est2 and mean, converted to our convention (z, y, x) shift."""
    out = {}
    with open(fov / "authors_drift.csv") as fh:
        for row in csv.DictReader(fh):
            out[row["hybe"]] = {key: _drift(row, key) for key in ("est1", "est2", "mean")}
    return out


def _drift(row: dict, prefix: str) -> np.ndarray:
    # columns named z, x, y are axes (z, y, x); values are displacements = -shift
    return -np.array([float(row[f"{prefix}_z"]), float(row[f"{prefix}_x"]), float(row[f"{prefix}_y"])])


def _pair_shift(stacks: dict, cache: dict, a: str, b: str) -> np.ndarray:
    """d(a, b): the shift to apply to round b to align it onto round a (cached)."""
    if (a, b) not in cache:
        cache[(a, b)] = np.asarray(register(stacks[a], stacks[b]).global_shift)
    return cache[(a, b)]


def bintu(data: Path, report: list[str], fig_data: dict) -> None:
    base = data / "bintu2018_beads_3d"
    diffs, spreads, rows = [], [], []
    closure = []
    for fov in sorted(p for p in base.glob("fov*") if p.is_dir()):
        names = rounds(fov)
        stacks = {n: load(fov / f"{n}_beads.tif") for n in names}
        authors = authors_shifts(fov)
        cache: dict[tuple[str, str], np.ndarray] = {}
        d = lambda a, b: _pair_shift(stacks, cache, a, b)  # noqa: E731, B023
        for n in names:
            if n == REF_ROUND or n not in authors:
                continue
            ours = d(REF_ROUND, n)
            a = authors[n]
            diffs.append(ours - a["mean"])
            spreads.append(a["est1"] - a["est2"])
            rows.append((fov.name, n, ours, a["mean"], a["est1"] - a["est2"]))
            fig_data.setdefault("bintu", []).append((ours, a["mean"], a["est1"], a["est2"]))
        # closure over consecutive triples and triples through the reference
        for i in range(len(names) - 2):
            a, b, c = names[i], names[i + 1], names[i + 2]
            closure.append(d(a, b) + d(b, c) - d(a, c))
        for i in range(0, len(names) - 1, 2):
            a, c = names[i], names[i + 1]
            if REF_ROUND in (a, c):
                continue
            closure.append(d(a, REF_ROUND) + d(REF_ROUND, c) - d(a, c))
    diffs, spreads, closure = np.abs(diffs), np.abs(spreads), np.abs(closure)
    fig_data["closure"] = closure
    report += [
        "## 1. Bintu et al. 2018 beads: agreement with the authors' drift",
        "",
        f"{len(rows)} rounds over {len({r[0] for r in rows})} fields, each registered onto {REF_ROUND} "
        "(global shift, default parameters). The authors fitted beads in two sub-cubes (est1, est2); "
        "their mean is the reference here, and |est1 - est2| is how much the authors disagree with "
        "themselves.",
        "",
        "| axis | median \\|ours - authors' mean\\| px | 90th pct | median \\|est1 - est2\\| (authors' spread) px | 90th pct |",
        "|---|---|---|---|---|",
    ]
    for k, axis in enumerate("zyx"):
        report.append(
            f"| {axis} | {np.median(diffs[:, k]):.3f} | {np.percentile(diffs[:, k], 90):.3f} | "
            f"{np.median(spreads[:, k]):.3f} | {np.percentile(spreads[:, k], 90):.3f} |"
        )
    report += [
        "",
        "<details><summary>per round</summary>",
        "",
        "| field | round | ours (dz, dy, dx) | authors' mean | authors' est1 - est2 |",
        "|---|---|---|---|---|",
    ]
    fmt = lambda v: "(" + ", ".join(f"{x:+.2f}" for x in v) + ")"  # noqa: E731
    for f, n, o, a, s in rows:
        report.append(f"| {f} | {n} | {fmt(o)} | {fmt(a)} | {fmt(s)} |")
    report += [
        "",
        "</details>",
        "",
        "## 2. Closure",
        "",
        f"{len(closure)} triples of rounds (consecutive rounds, and pairs through {REF_ROUND}): "
        "|d(A,B) + d(B,C) - d(A,C)| per axis.",
        "",
        "| axis | median px | 90th pct | max |",
        "|---|---|---|---|",
    ]
    for k, axis in enumerate("zyx"):
        c = closure[:, k]
        report.append(f"| {axis} | {np.median(c):.3f} | {np.percentile(c, 90):.3f} | {c.max():.3f} |")
    report.append("")


def real_stacks(data: Path) -> dict[str, np.ndarray]:
    out = {}
    for fov in sorted((data / "bintu2018_beads_3d").glob("fov*")):
        out[f"Bintu {fov.name} H1R1 beads"] = load(fov / "H1R1_beads.tif")
    items = {
        "LLSM bead PSF (pycudadecon)": data / "pycudadecon_llsm_bead_psf" / "psf.tif",
        "yeast spots (SpotMAX single_volume)": data / "spotmax_yeast_3d_spots" / "single_volume.tiff",
        "yeast mtDNA cell (SpotMAX UNet sample)": data
        / "spotmax_yeast_3d_spots"
        / "SpotMAX_UNet_3D_input_sample_zyx.tif",
        "DAPI nucleus (deconwolf)": data / "deconwolf_dapi_3d" / "dapi_001.tif",
        "light-sheet embryo (ndimreg)": data / "ndimreg_lightsheet_embryo_3d" / "illumination.tif",
    }
    for name, path in items.items():
        if path.exists():
            out[name] = np.squeeze(load(path))
    return out


def known_offsets(data: Path, report: list[str], n_offsets: int = 10) -> None:
    report += [
        "## 3. Known offsets on real texture",
        "",
        f"Each stack is shifted by {n_offsets} random sub-pixel offsets (cubic spline), independent "
        "Gaussian noise of 1% of its range is added to both copies, and the same interior region is "
        "cropped from both, clear of the margins the shift affects (so the moving stack has real "
        "content at its edges, as in a real acquisition, not replicated edge planes). Offsets: up to "
        "±15 px in y/x (at most a sixth of the extent), up to ±5 planes in z (at most a tenth of the "
        "depth, so thin stacks keep planes after cropping). The table gives the error of the "
        "recovered offset, with default parameters.",
        "",
        "'finer' counts the offsets for which napari-fidreg found the correlation peaks weak with the "
        "default background (sigma 8) and used sigma 4 instead (docs/method.md, dense texture); "
        "'flagged' those for which it warned that no block gave a confident peak (the result is then "
        "the coarse estimate).",
        "",
        "| stack | shape | max \\|error\\| z | y | x | median \\|error\\| z | y | x | finer | flagged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    worst = np.zeros(3)
    for i, (name, vol) in enumerate(real_stacks(data).items()):
        errs, finer, flagged = _offset_errors(vol, np.random.default_rng(2026 + i), n_offsets)
        worst = np.maximum(worst, errs.max(axis=0))
        mx, md = errs.max(axis=0), np.median(errs, axis=0)
        report.append(
            f"| {name} | {vol.shape} | {mx[0]:.3f} | {mx[1]:.3f} | {mx[2]:.3f} | "
            f"{md[0]:.3f} | {md[1]:.3f} | {md[2]:.3f} | {finer}/{n_offsets} | {flagged}/{n_offsets} |"
        )
    report += [
        "",
        f"Worst error over all stacks and offsets: (z, y, x) = ({worst[0]:.3f}, {worst[1]:.3f}, {worst[2]:.3f}) px.",
        "",
    ]


def _offset_errors(vol: np.ndarray, rng, n_offsets: int) -> tuple[np.ndarray, int, int]:
    """|recovered - true| per axis for ``n_offsets`` known offsets; how many used the finer
    background; how many were flagged."""
    errs, finer, flagged = [], 0, 0
    default_sigma = Params().background_sigma
    for shift, ref, mov in _known_offset_pairs(vol, rng, n_offsets):
        reg = register(ref, mov)
        errs.append(np.subtract(reg.global_shift, shift))
        finer += reg.params.background_sigma < default_sigma
        flagged += not reg.global_confident
    return np.abs(errs), finer, flagged


BLOCK_SIZES = {"yeast spots (SpotMAX single_volume)": 128}  # 64 px otherwise


def block_offsets(data: Path, report: list[str], n_offsets: int = 5) -> None:
    report += [
        "## 4. Block shifts on real texture",
        "",
        f"The same kind of known offsets ({n_offsets} per stack, same noise and cropping), registered "
        "with a block grid (64-px blocks; 128 px for the 700-px yeast stack): every inlier block's "
        "shift against the known offset, without and with `refine_blocks`. Blocks not listed as "
        "inliers were rejected (no fiducials, weak peak, outlier) and filled from their neighbours.",
        "",
        "| stack | block | RMS error z | y | x | inliers | with refine_blocks: RMS z | y | x |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, (name, vol) in enumerate(real_stacks(data).items()):
        size = BLOCK_SIZES.get(name, 64)
        if max(vol.shape[1:]) < 2 * size:
            continue  # fewer than two blocks across: nothing local to measure
        row = []
        for refine in (False, True):
            errs, n_in, n_all = _block_errors(vol, np.random.default_rng(2026 + i), n_offsets, size, refine)
            rms = np.sqrt(np.mean(np.square(errs), axis=0))
            row.append((rms, n_in, n_all))
        (r0, n_in, n_all), (r1, _, _) = row
        report.append(
            f"| {name} | {size} | {r0[0]:.3f} | {r0[1]:.3f} | {r0[2]:.3f} | {n_in}/{n_all} | "
            f"{r1[0]:.3f} | {r1[1]:.3f} | {r1[2]:.3f} |"
        )
    report.append("")


def _block_errors(vol: np.ndarray, rng, n_offsets: int, size: int, refine: bool):
    """Inlier block errors against the known offsets; inliers and blocks counted."""
    errs, n_in, n_all = [], 0, 0
    for shift, ref, mov in _known_offset_pairs(vol, rng, n_offsets):
        reg = register(ref, mov, block_size=size, refine_blocks=refine)
        for b in reg.blocks:
            n_all += 1
            if b.inlier:
                n_in += 1
                errs.append(np.subtract(b.measured_shift, shift))
    return np.array(errs), n_in, n_all


def _known_offset_pairs(vol: np.ndarray, rng, n_offsets: int):
    """(offset, reference, moving) for ``n_offsets`` random offsets of a real stack.

    The moving copy is shifted by cubic spline (content displaced by -offset), both get
    independent noise of 1% of the range, and both are cropped to the same interior
    region clear of the margins the shift affects.
    """
    vol = vol.astype(np.float32)
    span = float(np.percentile(vol, 99.9) - np.percentile(vol, 0.1))
    lim = np.array([min(5, vol.shape[0] / 10), min(15, vol.shape[1] / 6), min(15, vol.shape[2] / 6)])
    for _ in range(n_offsets):
        shift = rng.uniform(-lim, lim)
        moved = ndimage.shift(vol, -shift, order=3, mode="nearest")
        margin = np.ceil(np.abs(shift)).astype(int) + 1
        crop = tuple(slice(m, n - m) for m, n in zip(margin, vol.shape))
        ref = (vol + rng.normal(0, 0.01 * span, vol.shape).astype(np.float32))[crop]
        mov = (moved + rng.normal(0, 0.01 * span, vol.shape).astype(np.float32))[crop]
        yield shift, ref, mov


def _quality(reg) -> str:
    return f"{reg.global_score:.2f}, {reg.global_sharpness:.0f}"


def _warn(reg) -> str:
    return "" if reg.global_confident else "low confidence: coarse estimate only"


def pairs_2d(data: Path, report: list[str]) -> None:
    from skimage.registration import phase_cross_correlation

    report += [
        "## 5. Real 2D pairs as single-plane stacks",
        "",
        "| pair | ours (dy, dx) | score, sharpness | reference (dy, dx) | reference from | our warnings |",
        "|---|---|---|---|---|---|",
    ]
    ph = data / "pyhim_small_dataset_2d"
    if ph.exists():
        published = json.loads((ph / "pyhim_reference_shifts_2d.json").read_text())["ROI:005"]
        ref = load(ph / "fiducial_RT26_ch00_MIP.tif")[None]
        for key, fname in (("RT27", "fiducial_RT27_ch00_MIP.tif"), ("DAPI", "fiducial_DAPIcycle_ch01_MIP.tif")):
            mov = load(ph / fname)[None]
            reg = register(ref, mov)
            o = reg.global_shift[1:]
            report.append(
                f"| pyHiM RT26 → {key} | ({o[0]:+.2f}, {o[1]:+.2f}) | {_quality(reg)} | "
                f"({published[key][0]:+.2f}, {published[key][1]:+.2f}) | pyHiM's published 2D shift | {_warn(reg)} |"
            )
    mer = data / "merlin_test_multiround_2d"
    for fov in (0, 1):
        path = mer / f"fiducial_561_fov{fov}_rounds0-7.tif"
        if not path.exists():
            continue
        stack = load(path)
        for r in range(1, stack.shape[0]):
            reg = register(stack[0][None], stack[r][None])
            sk, _, _ = phase_cross_correlation(
                stack[0].astype(np.float32), stack[r].astype(np.float32), upsample_factor=100
            )
            beads, spread, n = bead_centroid_shift(stack[0], stack[r])
            o = reg.global_shift[1:]
            report.append(
                f"| MERlin fov{fov} round 0 → {r} | ({o[0]:+.2f}, {o[1]:+.2f}) | {_quality(reg)} | "
                f"({beads[0]:+.2f}, {beads[1]:+.2f}) ± ({spread[0]:.2f}, {spread[1]:.2f}) | bead centroids, "
                f"{n} beads; skimage: ({sk[0]:+.2f}, {sk[1]:+.2f}) | {_warn(reg)} |"
            )
    report += [
        "",
        "MERlin has no published shifts. The reference is the mean displacement of the fiducial "
        "beads' intensity centroids (± their standard deviation: the beads do not all move alike), "
        "measured independently of any correlation. scikit-image's phase correlation on the raw "
        "frames is shown beside it: on fov0 it locks onto (0, 0), the camera's fixed pattern, "
        "while the beads moved by ~(1.5, -5) px.",
        "",
    ]


def bead_centroid_shift(ref: np.ndarray, mov: np.ndarray, radius: float = 12.5):
    """Mean (dy, dx) to apply to ``mov`` from matched bead centroids, their std, and how many.

    For MERlin's large, ring-shaped (defocused) beads: each bead is found as a maximum of
    the background-free frame smoothed until a ring is a blob, then located by an
    iterated intensity centroid in a disc of ``radius`` px; beads near the frame edge are
    dropped, and each reference bead is matched to the nearest moving bead within 10 px.
    """
    a, b = _bead_centres(ref, radius), _bead_centres(mov, radius)
    d = []
    for p in a:
        if len(b):
            j = int(np.argmin(((b - p) ** 2).sum(1)))
            if np.hypot(*(b[j] - p)) < 10:
                d.append(p - b[j])
    d = np.array(d).reshape(-1, 2)
    if not len(d):
        return np.full(2, np.nan), np.full(2, np.nan), 0
    return d.mean(axis=0), d.std(axis=0), len(d)


def _bead_centres(img: np.ndarray, radius: float) -> np.ndarray:
    img = img.astype(np.float64)
    hp = img - ndimage.uniform_filter(ndimage.minimum_filter(img, 31), 31)
    blob = ndimage.gaussian_filter(hp, radius / 2.5)
    base = np.percentile(blob, 50)
    peaks = (blob == ndimage.maximum_filter(blob, 21)) & (blob > base + 0.3 * (blob.max() - base))
    yy, xx = np.indices(img.shape)
    weight = np.clip(hp, 0, None)
    out = []
    for cy, cx in zip(*np.nonzero(peaks)):
        cy, cx = float(cy), float(cx)
        for _ in range(50):
            w = weight * (((yy - cy) ** 2 + (xx - cx) ** 2) < radius**2)
            ny, nx = (w * yy).sum() / w.sum(), (w * xx).sum() / w.sum()
            done = abs(ny - cy) + abs(nx - cx) < 1e-4
            cy, cx = ny, nx
            if done:
                break
        if radius <= cy <= img.shape[0] - 1 - radius and radius <= cx <= img.shape[1] - 1 - radius:
            out.append((cy, cx))
    return np.array(out).reshape(-1, 2)


def figure(fig_data: dict, path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 4), dpi=100)
    b = fig_data.get("bintu", [])
    if b:
        ours = np.array([x[0] for x in b])
        mean = np.array([x[1] for x in b])
        e1 = np.array([x[2] for x in b])
        e2 = np.array([x[3] for x in b])
        for k, axis in enumerate("zyx"):
            ax = fig.add_subplot(1, 4, k + 1)
            ax.errorbar(mean[:, k], ours[:, k], xerr=np.abs(e1[:, k] - e2[:, k]) / 2, fmt="o", ms=3, alpha=0.7)
            lo, hi = min(mean[:, k].min(), ours[:, k].min()) - 0.2, max(mean[:, k].max(), ours[:, k].max()) + 0.2
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.set_xlabel(f"authors' d{axis} (px, our sign)")
            ax.set_ylabel(f"napari-fidreg d{axis} (px)")
            ax.set_title(f"Bintu beads, {axis}")
    c = fig_data.get("closure")
    if c is not None and len(c):
        ax = fig.add_subplot(1, 4, 4)
        ax.boxplot([c[:, 0], c[:, 1], c[:, 2]], tick_labels=["z", "y", "x"])
        ax.set_ylabel("|closure residual| px")
        ax.set_title("closure of triples")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="the shared data folder (with bintu2018_beads_3d/ ...)")
    ap.add_argument("--out", type=Path, default=None, help="markdown report (docs/validation.md)")
    ap.add_argument("--figure", type=Path, default=Path("docs/images/validation.png"))
    args = ap.parse_args(argv)
    if not (args.data / "bintu2018_beads_3d").is_dir():
        print(f"{args.data}: no bintu2018_beads_3d folder here", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    report = [
        "# Validation on real data",
        "",
        f"Produced by `benchmarks/validate_real.py` on {time.strftime('%Y-%m-%d')} with default "
        "parameters (global shift). The data are not part of this project (see each folder's "
        "PROVENANCE.txt); only derived numbers and plots are shown.",
        "",
        f"![validation](images/{args.figure.name})",
        "",
    ]
    fig_data: dict = {}
    bintu(args.data, report, fig_data)
    known_offsets(args.data, report)
    block_offsets(args.data, report)
    pairs_2d(args.data, report)
    report.append(f"Total run time {time.perf_counter() - t0:.0f} s.")
    figure(fig_data, args.figure)
    text = "\n".join(report) + "\n"
    print(text)
    if args.out:
        write_report(args.out, text, NOTES_MARKER)  # keeps the hand-written reading
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

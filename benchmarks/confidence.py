"""Is ``global_confident`` right, and does ``global_uncertainty`` cover the error? (data folder as an argument)

    .venv/bin/python benchmarks/confidence.py ../shared/data [--cases] [--markdown]

POSITIVES are pairs that can be registered: every Bintu et al. 2018 bead round onto
H11R11 of the same field; real stacks and synthetic bead pairs shifted by known
offsets, thin (3-10-plane) crops and stacks included; real 2D bead rounds (MERlin).
NEGATIVES cannot be registered: another field, another channel (the Cy5 readout signal,
DAPI), noise, and the camera alone (hot pixels, faint or not, and uneven background
without fiducials), unrelated synthetic fields imaged with the same camera or not.

Prints the confusion table (positives / negatives x confident / not) per group, and for
the known offsets the coverage of the error by the uncertainty: the fraction of
confident cases with |error| <= 3 x uncertainty on every axis (and per axis). Nothing
is copied from the data folder; the synthetic pairs come from
:func:`napari_fidreg.core.synthetic.fiducial_pair`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from napari_fidreg.core import register
from napari_fidreg.core.synthetic import fiducial_pair

BINTU = "bintu2018_beads_3d"
REF_ROUND = "H11R11"


def load(path: Path) -> np.ndarray:
    return np.squeeze(tifffile.imread(path))


def rounds(fov: Path) -> list[str]:
    names = [p.name[: -len("_beads.tif")] for p in fov.glob("H*R*_beads.tif")]
    return sorted(names, key=lambda n: int(n.split("R")[-1]))


def bead_plane(vol: np.ndarray) -> int:
    """The plane where the beads are brightest (the Bintu stacks' first and last five
    planes, which the authors trim, are left out)."""
    a = vol.astype(np.float32)
    profile = np.percentile(a - ndimage.uniform_filter(a, (1, 15, 15)), 99.9, axis=(1, 2))
    lo, hi = (5, len(profile) - 5) if len(profile) > 20 else (0, len(profile))
    return lo + int(np.argmax(profile[lo:hi]))


def known_offset(vol: np.ndarray, shift, rng, planes: int | None = None):
    """(reference, moving): the moving copy's content displaced by -shift (cubic spline),
    independent noise of 1 % of the range on both, both cropped to the same interior (and
    to ``planes`` planes around the beads)."""
    vol = vol.astype(np.float32)
    span = float(np.percentile(vol, 99.9) - np.percentile(vol, 0.1))
    moved = ndimage.shift(vol, -np.asarray(shift), order=3, mode="nearest")
    margin = np.ceil(np.abs(shift)).astype(int) + 1
    crop = [slice(m, n - m) for m, n in zip(margin, vol.shape)]
    if planes is not None:
        z0 = int(np.clip(bead_plane(vol) - planes // 2, margin[0], vol.shape[0] - margin[0] - planes))
        crop[0] = slice(z0, z0 + planes)
    crop = tuple(crop)
    ref = (vol + rng.normal(0, 0.01 * span, vol.shape).astype(np.float32))[crop]
    mov = (moved + rng.normal(0, 0.01 * span, vol.shape).astype(np.float32))[crop]
    return ref, mov


def with_camera_of(pair, other) -> np.ndarray:
    """``other``'s moving stack with ``pair``'s hot pixels added: another field, same camera."""
    mov = other.moving.astype(np.float32)
    ys, xs = pair.hot_pixels[:, 0], pair.hot_pixels[:, 1]
    zmin = pair.reference.min(axis=0).astype(np.float32)
    mov[:, ys, xs] += zmin[ys, xs] - np.median(zmin)
    return np.clip(mov, 0, 65535).astype(np.uint16)


def positives(data: Path, seed: int = 0):
    """(group, label, reference, moving, known shift or None)."""
    base = data / BINTU
    fovs = sorted(p for p in base.glob("fov*") if p.is_dir())
    for fov in fovs:
        ref = load(fov / f"{REF_ROUND}_beads.tif")
        for n in rounds(fov):
            if n != REF_ROUND:
                yield "Bintu beads: round onto H11R11", f"{fov.name} {n}", ref, load(fov / f"{n}_beads.tif"), None
        if (fov / "H0_beads.tif").exists():
            yield "Bintu beads: round onto H11R11", f"{fov.name} H0 (36 planes)", ref, load(fov / "H0_beads.tif"), None
    rng = np.random.default_rng(11 + 1000 * seed)
    source = ("H1R1", "H6R6", "H16R16")[seed % 3]
    for fov in fovs:
        vol = load(fov / f"{source}_beads.tif")
        for k in range(4):
            shift = rng.uniform((-3, -10, -10), (3, 10, 10))
            yield "known offset: Bintu beads", f"{fov.name} {source} #{k}", *known_offset(vol, shift, rng), shift
        yield (
            "known offset: Bintu beads",
            f"{fov.name} {source} zero",
            *known_offset(vol, np.zeros(3), rng),
            np.zeros(3),
        )
        for planes in (3, 4, 5, 8):
            for k in range(3):
                shift = rng.uniform((-1, -8, -8), (1, 8, 8))
                ref, mov = known_offset(vol, shift, rng, planes=planes)
                yield "known offset: Bintu beads, thin crop", f"{fov.name} {planes} planes #{k}", ref, mov, shift
    sys.path.insert(0, str(Path(__file__).parent))
    from validate_real import _known_offset_pairs, real_stacks

    for i, (name, vol) in enumerate(real_stacks(data).items()):
        if not name.startswith("Bintu"):
            for k, (shift, ref, mov) in enumerate(
                _known_offset_pairs(vol, np.random.default_rng(2026 + i + 1000 * seed), 3)
            ):
                yield "known offset: real texture", f"{name} #{k}", ref, mov, shift
    rng = np.random.default_rng(12 + 1000 * seed)
    synthetic = [
        ((60, 256, 256), {}),
        ((40, 160, 160), {}),
        ((20, 96, 96), {}),
        ((60, 512, 512), {}),
        ((40, 512, 512), {"density": 1e-4, "amplitude": 300}),
        ((30, 1024, 1024), {}),
    ]
    for i, (shape, kw) in enumerate(synthetic):
        for k in range(2):
            shift = rng.uniform((-4, -12, -12), (4, 12, 12))
            p = fiducial_pair(shape, tuple(shift), seed=100 + 10 * i + k + 1000 * seed, **kw)
            extra = " sparse, dim" if kw else ""
            yield "known offset: synthetic", f"{shape}{extra} #{k}", p.reference, p.moving, shift
    for nz in (3, 4, 5, 6, 8, 10):
        for k in range(3):
            shift = rng.uniform((-1, -8, -8), (1, 8, 8))
            p = fiducial_pair((nz, 512, 512), tuple(shift), seed=200 + 10 * nz + k + 1000 * seed)
            yield "known offset: synthetic, thin", f"({nz}, 512, 512) #{k}", p.reference, p.moving, shift
    for shape in ((60, 512, 512), (30, 1024, 1024)):
        p = fiducial_pair(shape, (1.2, -5.3, 8.6), seed=700 + 1000 * seed, deformation=(0.5, 1.5, 1.5))
        yield "synthetic, deforming", f"{shape}", p.reference, p.moving, None
    mer = data / "merlin_test_multiround_2d"
    for fov in (0, 1):
        path = mer / f"fiducial_561_fov{fov}_rounds0-7.tif"
        if path.exists():
            m = load(path)
            for r in range(1, m.shape[0]):
                yield "MERlin 2D beads: round onto round 0", f"fov{fov} r{r}", m[0][None], m[r][None], None


def negatives(data: Path, seed: int = 0):
    """(group, label, reference, moving)."""
    base = data / BINTU
    fovs = sorted(p for p in base.glob("fov*") if p.is_dir())
    for a in fovs:
        ref = load(a / f"{REF_ROUND}_beads.tif")
        for b in fovs:
            if b != a:
                for n in (("H1R1", "H7R7", "H15R15"), ("H3R3", "H9R9", "H20R20"), ("H5R5", "H12R12", "H18R18"))[
                    seed % 3
                ]:
                    yield (
                        "other field: Bintu beads",
                        f"{a.name} H11R11 vs {b.name} {n}",
                        ref,
                        load(b / f"{n}_beads.tif"),
                    )
    f1 = base / "fov1"
    beads = {n: load(f1 / f"{n}_beads.tif") for n in ("H1R1", "H2R2", REF_ROUND)}
    for n in ("H1R1", "H2R2", REF_ROUND):
        cy5 = load(f1 / f"{n}_cy5_signal.tif")
        yield "other channel: beads vs Cy5 signal", f"fov1 H11R11 beads vs {n} Cy5", beads[REF_ROUND], cy5
        if n != REF_ROUND:
            yield "other channel: beads vs Cy5 signal", f"fov1 {n} beads vs {n} Cy5", beads[n], cy5
    dapi = load(f1 / "H0_dapi.tif")
    yield "other channel: beads vs DAPI", "fov1 H11R11 beads vs H0 DAPI", beads[REF_ROUND], dapi
    yield "other channel: beads vs DAPI", "fov1 H0 beads vs H0 DAPI", load(f1 / "H0_beads.tif"), dapi
    yield "other channel: beads vs DAPI", "fov1 H0 DAPI vs H11R11 beads", dapi, beads[REF_ROUND]
    sys.path.insert(0, str(Path(__file__).parent))
    from validate_real import real_stacks

    real = {k: v for k, v in real_stacks(data).items() if not k.startswith("Bintu")}
    names = list(real)
    for a, b in zip(names, names[1:] + names[:1]):
        yield "other field: other real stacks", f"{a} vs {b}", real[a], real[b]
    mer = data / "merlin_test_multiround_2d"
    if (mer / "fiducial_561_fov0_rounds0-7.tif").exists():
        m0 = load(mer / "fiducial_561_fov0_rounds0-7.tif")
        m1 = load(mer / "fiducial_561_fov1_rounds0-7.tif")
        for r in range(0, 8, 2):
            yield "other field: MERlin 2D, same camera", f"fov0 r0 vs fov1 r{r}", m0[0][None], m1[r][None]
            yield "other field: MERlin 2D, same camera", f"fov1 r0 vs fov0 r{r}", m1[0][None], m0[r][None]
    rng = np.random.default_rng(13 + 1000 * seed)
    for shape in ((39, 175, 104), (60, 256, 256), (60, 512, 512), (4, 512, 512), (1, 256, 256)):
        yield (
            "noise",
            f"Poisson {shape}",
            rng.poisson(300, shape).astype(np.uint16),
            rng.poisson(300, shape).astype(np.uint16),
        )
    yield (
        "noise",
        "Bintu fov1 beads vs noise",
        beads[REF_ROUND],
        rng.poisson(3000, beads[REF_ROUND].shape).astype(np.uint16),
    )
    for i, shape in enumerate(((60, 256, 256), (40, 512, 512), (4, 512, 512), (39, 175, 104))):
        p = fiducial_pair(shape, (0.0, 0.0, 0.0), amplitude=0.0, seed=300 + i + 1000 * seed)
        yield "camera only: hot pixels, background, noise", f"{shape}", p.reference, p.moving
    for i, (shape, value) in enumerate(
        (((40, 256, 256), 60), ((40, 256, 256), 150), ((60, 512, 512), 100), ((4, 256, 256), 100), ((1, 256, 256), 100))
    ):
        p = fiducial_pair(
            shape, (0.0, 0.0, 0.0), amplitude=0.0, hot_pixel_value=value, n_hot_pixels=200, seed=310 + i + 1000 * seed
        )
        yield "camera only: faint hot pixels", f"{shape}, {value} counts", p.reference, p.moving
    for i, shape in enumerate(((60, 256, 256), (60, 512, 512), (40, 160, 160), (4, 512, 512), (30, 1024, 1024))):
        a = fiducial_pair(shape, (1.0, 2.0, 3.0), seed=400 + i + 1000 * seed)
        b = fiducial_pair(shape, (1.0, 2.0, 3.0), seed=500 + i + 1000 * seed)
        yield "other field: synthetic, other camera", f"{shape}", a.reference, b.moving
        yield "other field: synthetic, same camera", f"{shape}", a.reference, with_camera_of(a, b)
        a = fiducial_pair(shape, (1.0, 2.0, 3.0), seed=450 + i + 1000 * seed, hot_pixel_value=100, n_hot_pixels=200)
        b = fiducial_pair(shape, (1.0, 2.0, 3.0), seed=550 + i + 1000 * seed, n_hot_pixels=0)
        yield "other field: synthetic, same camera, faint hot pixels", f"{shape}", a.reference, with_camera_of(a, b)


def run(data: Path, show_cases: bool, seed: int = 0):
    rows = []
    for positive, source in ((True, positives(data, seed)), (False, negatives(data, seed))):
        for item in source:
            group, label, ref, mov = item[:4]
            truth = item[4] if positive else None
            t0 = time.perf_counter()
            reg = register(ref, mov)
            row = {
                "group": group,
                "label": label,
                "positive": positive,
                "confident": reg.global_confident,
                "shift": np.array(reg.global_shift),
                "uncertainty": None if reg.global_uncertainty is None else np.array(reg.global_uncertainty),
                "truth": truth,
                "nz": ref.shape[0],
                "seconds": time.perf_counter() - t0,
                "score": reg.global_score,
                "sharpness": reg.global_sharpness,
            }
            rows.append(row)
            if show_cases:
                print(_case_line(row), flush=True)
    return rows


def _case_line(r) -> str:
    u = r["uncertainty"]
    line = (
        f"{'P' if r['positive'] else 'N'} {'conf' if r['confident'] else '----'} {r['group'][:38]:38s} "
        f"{r['label'][:44]:44s} shift ({', '.join(f'{v:+.2f}' for v in r['shift'])}) "
        f"score {r['score']:.3f} sharp {r['sharpness']:.0f}"
    )
    if u is not None:
        line += " ± (" + ", ".join(f"{v:.3f}" for v in u) + ")"
    if r["truth"] is not None:
        err = np.abs(r["shift"] - r["truth"])
        line += " err (" + ", ".join(f"{v:.3f}" for v in err) + ")"
        if u is not None:
            line += " err/u (" + ", ".join(f"{e / max(v, 1e-9):.1f}" for e, v in zip(err, u)) + ")"
    return line


def covered(r) -> np.ndarray:
    """Per axis: |error| <= 3 x uncertainty (False where there is no uncertainty)."""
    if r["uncertainty"] is None:
        return np.zeros(3, bool)
    return np.abs(r["shift"] - r["truth"]) <= 3 * r["uncertainty"]


def report(rows) -> str:
    out = [
        "| | group | pairs | confident | not confident |",
        "|---|---|---|---|---|",
    ]
    by_group = defaultdict(list)
    for r in rows:
        by_group[(r["positive"], r["group"])].append(r)
    for (positive, group), rs in by_group.items():
        n_conf = sum(r["confident"] for r in rs)
        out.append(
            f"| {'positive' if positive else 'negative'} | {group} | {len(rs)} | {n_conf} | {len(rs) - n_conf} |"
        )
    for positive in (True, False):
        rs = [r for r in rows if r["positive"] == positive]
        n_conf = sum(r["confident"] for r in rs)
        out.append(
            f"| **{'positives' if positive else 'negatives'}** | **all** | **{len(rs)}** | **{n_conf}** | "
            f"**{len(rs) - n_conf}** |"
        )
    known = [r for r in rows if r["positive"] and r["truth"] is not None and r["confident"]]
    out += [
        "",
        "| known offsets (confident) | cases | \\|error\\| <= 3 x uncertainty on every axis | z | y | x | "
        "no uncertainty | worst \\|error\\| / uncertainty (z, y, x) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups = sorted({r["group"] for r in known}, key=lambda g: [r["group"] for r in known].index(g))
    for g in [*groups, None]:
        rs = [r for r in known if g is None or r["group"] == g]
        cov = np.array([covered(r) for r in rs]).reshape(-1, 3)
        ratios = np.array(
            [
                np.abs(r["shift"] - r["truth"]) / np.maximum(r["uncertainty"], 1e-12)
                for r in rs
                if r["uncertainty"] is not None
            ]
        ).reshape(-1, 3)
        worst = ratios.max(axis=0) if len(ratios) else np.full(3, np.nan)
        none = sum(r["uncertainty"] is None for r in rs)
        name = "**all**" if g is None else g
        out.append(
            f"| {name} | {len(rs)} | {cov.all(axis=1).mean():.0%} | {cov[:, 0].mean():.0%} | {cov[:, 1].mean():.0%} | "
            f"{cov[:, 2].mean():.0%} | {none} | ({worst[0]:.1f}, {worst[1]:.1f}, {worst[2]:.1f}) |"
        )
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="the shared data folder (with bintu2018_beads_3d/ ...)")
    ap.add_argument("--cases", action="store_true", help="print every case as it is registered")
    ap.add_argument("--seed", type=int, default=0, help="another draw of the random offsets and synthetic fields")
    args = ap.parse_args(argv)
    if not (args.data / BINTU).is_dir():
        print(f"confidence.py: error: {args.data / BINTU} not found", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rows = run(args.data, args.cases, args.seed)
    print(report(rows))
    print(f"\n{len(rows)} pairs in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

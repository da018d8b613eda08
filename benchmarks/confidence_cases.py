"""Scratch: the test set of positives and negatives (later merged into confidence.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from napari_fidreg.core.synthetic import fiducial_pair

BINTU = "bintu2018_beads_3d"


def load(path: Path) -> np.ndarray:
    return np.squeeze(tifffile.imread(path))


def rounds(fov: Path) -> list[str]:
    names = [p.name[: -len("_beads.tif")] for p in fov.glob("H*R*_beads.tif")]
    return sorted(names, key=lambda n: int(n.split("R")[-1]))


def bead_plane(vol: np.ndarray) -> int:
    """The plane where the beads are brightest (ends excluded: Bintu's first and last planes
    hold another channel's leftovers)."""
    a = vol.astype(np.float32)
    hp = a - ndimage.uniform_filter(a, (1, 15, 15))
    prof = np.percentile(hp, 99.9, axis=(1, 2))
    lo, hi = (5, len(prof) - 5) if len(prof) > 20 else (0, len(prof))
    return lo + int(np.argmax(prof[lo:hi]))


def known_offset(vol, shift, rng, noise=0.01, planes=None):
    """(reference, moving) with the moving copy's content displaced by -shift (cubic spline),
    1% noise on both, cropped to the same interior (and to ``planes`` planes around the beads)."""
    vol = vol.astype(np.float32)
    span = float(np.percentile(vol, 99.9) - np.percentile(vol, 0.1))
    moved = ndimage.shift(vol, -np.asarray(shift), order=3, mode="nearest")
    margin = np.ceil(np.abs(shift)).astype(int) + 1
    crop = [slice(m, n - m) for m, n in zip(margin, vol.shape)]
    if planes is not None:
        c = bead_plane(vol)
        z0 = int(np.clip(c - planes // 2, margin[0], vol.shape[0] - margin[0] - planes))
        crop[0] = slice(z0, z0 + planes)
    crop = tuple(crop)
    ref = (vol + rng.normal(0, noise * span, vol.shape).astype(np.float32))[crop]
    mov = (moved + rng.normal(0, noise * span, vol.shape).astype(np.float32))[crop]
    return ref, mov


def same_camera(pair, other):
    """``other``'s moving stack with ``pair``'s hot pixels (same camera, another field)."""
    mov = other.moving.astype(np.float32)
    ys, xs = pair.hot_pixels[:, 0], pair.hot_pixels[:, 1]
    # the hot pixels' excess in pair's reference (its min over z minus the frame median)
    excess = pair.reference.min(axis=0)[ys, xs].astype(np.float32) - np.median(pair.reference.min(axis=0))
    mov[:, ys, xs] += excess
    return np.clip(mov, 0, 65535).astype(np.uint16)


def cases(data: Path, quick: bool = False):
    """Yield (group, label, positive, reference, moving, truth or None)."""
    base = data / BINTU
    fovs = sorted(p for p in base.glob("fov*") if p.is_dir())
    # -- positives: real bead pairs
    for fov in fovs:
        ref = load(fov / "H11R11_beads.tif")
        for n in rounds(fov):
            if n == "H11R11":
                continue
            yield "Bintu round onto H11R11", f"{fov.name} {n}", True, ref, load(fov / f"{n}_beads.tif"), None
        if (fov / "H0_beads.tif").exists():
            yield "Bintu round onto H11R11", f"{fov.name} H0 (36 planes)", True, ref, load(fov / "H0_beads.tif"), None
    # -- positives: known offsets, real beads, thick and thin
    rng = np.random.default_rng(11)
    for fov in fovs:
        vol = load(fov / "H1R1_beads.tif")
        for k in range(4):
            shift = rng.uniform((-3, -10, -10), (3, 10, 10))
            yield "known offset, Bintu beads", f"{fov.name} #{k}", True, *known_offset(vol, shift, rng), shift
        for planes in (3, 4, 5):
            for k in range(3):
                shift = rng.uniform((-1, -8, -8), (1, 8, 8))
                ref, mov = known_offset(vol, shift, rng, planes=planes)
                yield "known offset, Bintu thin crop", f"{fov.name} {planes} planes #{k}", True, ref, mov, shift
    # -- positives: synthetic known offsets
    rng = np.random.default_rng(12)
    synth = [
        ((60, 256, 256), {}),
        ((40, 160, 160), {}),
        ((60, 512, 512), {}),
        ((40, 512, 512), {"density": 1e-4, "amplitude": 300}),
        ((60, 512, 512), {"deformation": (0.5, 1.5, 1.5)}),
    ]
    for i, (shape, kw) in enumerate(synth):
        for k in range(2):
            shift = rng.uniform((-4, -12, -12), (4, 12, 12))
            p = fiducial_pair(shape, tuple(shift), seed=100 + 10 * i + k, **kw)
            truth = shift if "deformation" not in kw else None
            yield "known offset, synthetic", f"{shape} {kw or ''} #{k}", True, p.reference, p.moving, truth
    for nz in (3, 4, 5):
        for k in range(3):
            shift = rng.uniform((-1, -8, -8), (1, 8, 8))
            p = fiducial_pair((nz, 512, 512), tuple(shift), seed=200 + 10 * nz + k)
            yield "known offset, synthetic thin", f"{nz} planes #{k}", True, p.reference, p.moving, shift
    # -- negatives: another field
    for a in fovs:
        ref = load(a / "H11R11_beads.tif")
        for b in fovs:
            if b == a:
                continue
            for n in ("H1R1", "H7R7", "H15R15"):
                yield (
                    "other field (Bintu)",
                    f"{a.name} H11R11 vs {b.name} {n}",
                    False,
                    ref,
                    load(b / f"{n}_beads.tif"),
                    None,
                )
    # -- negatives: another channel
    f1 = base / "fov1"
    beads = {n: load(f1 / f"{n}_beads.tif") for n in ("H1R1", "H2R2", "H11R11")}
    for n in ("H1R1", "H2R2", "H11R11"):
        cy5 = load(f1 / f"{n}_cy5_signal.tif")
        yield "other channel (Cy5 signal)", f"fov1 H11R11 beads vs {n} Cy5", False, beads["H11R11"], cy5, None
        if n != "H11R11":
            yield "other channel (Cy5 signal)", f"fov1 {n} beads vs {n} Cy5", False, beads[n], cy5, None
    dapi = load(f1 / "H0_dapi.tif")
    yield "other channel (DAPI)", "fov1 H11R11 beads vs H0 DAPI", False, beads["H11R11"], dapi, None
    yield "other channel (DAPI)", "fov1 H0 beads vs H0 DAPI", False, load(f1 / "H0_beads.tif"), dapi, None
    yield "other channel (DAPI)", "fov1 H0 DAPI vs H11R11 beads", False, dapi, beads["H11R11"], None
    # -- negatives: noise
    rng = np.random.default_rng(13)
    for shape in ((39, 175, 104), (60, 256, 256), (60, 512, 512), (4, 512, 512), (40, 160, 160)):
        a = rng.poisson(300, shape).astype(np.uint16)
        b = rng.poisson(300, shape).astype(np.uint16)
        yield "noise", f"Poisson {shape}", False, a, b, None
    yield (
        "noise",
        "Bintu fov1 beads vs Poisson noise",
        False,
        beads["H11R11"],
        rng.poisson(3000, beads["H11R11"].shape).astype(np.uint16),
        None,
    )
    # -- negatives: camera only (hot pixels + uneven background + noise, no beads)
    for i, shape in enumerate(((60, 256, 256), (40, 512, 512), (4, 512, 512), (39, 175, 104))):
        p = fiducial_pair(shape, (0.0, 0.0, 0.0), amplitude=0.0, seed=300 + i)
        yield "camera only (synthetic)", f"{shape}", False, p.reference, p.moving, None
    # -- negatives: unrelated synthetic fields
    for i, shape in enumerate(((60, 256, 256), (60, 512, 512), (40, 160, 160), (4, 512, 512))):
        a = fiducial_pair(shape, (1.0, 2.0, 3.0), seed=400 + i)
        b = fiducial_pair(shape, (1.0, 2.0, 3.0), seed=500 + i)
        yield "other field (synthetic), other camera", f"{shape}", False, a.reference, b.moving, None
        yield "other field (synthetic), same camera", f"{shape}", False, a.reference, same_camera(a, b), None
    # -- negatives: real 2D, other field with the same camera
    mer = data / "merlin_test_multiround_2d"
    if (mer / "fiducial_561_fov0_rounds0-7.tif").exists():
        m0 = load(mer / "fiducial_561_fov0_rounds0-7.tif")
        m1 = load(mer / "fiducial_561_fov1_rounds0-7.tif")
        for r in range(0, 8, 2):
            yield "other field (MERlin 2D)", f"fov0 r0 vs fov1 r{r}", False, m0[0][None], m1[r][None], None
            yield "other field (MERlin 2D)", f"fov1 r0 vs fov0 r{r}", False, m1[0][None], m0[r][None], None
        for r in range(1, 8):
            yield "MERlin 2D round onto round 0", f"fov0 r{r}", True, m0[0][None], m0[r][None], None
            yield "MERlin 2D round onto round 0", f"fov1 r{r}", True, m1[0][None], m1[r][None], None


def real_known_offsets(data: Path, n: int = 3):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from validate_real import _known_offset_pairs, real_stacks

    for i, (name, vol) in enumerate(real_stacks(data).items()):
        if name.startswith("Bintu"):
            continue
        for k, (shift, ref, mov) in enumerate(_known_offset_pairs(vol, np.random.default_rng(2026 + i), n)):
            yield "known offset, real texture", f"{name} #{k}", True, ref, mov, shift

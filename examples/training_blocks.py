#!/usr/bin/env python3
"""Sample random training blocks (128³ by default) from imgdataset volumes.

Two sources, one sampler:

  training_blocks.py --dir OUT         every OME-Zarr (NGFF 0.4, Zarr v2) group under OUT,
                                       read from the files with zarr-python
  training_blocks.py --url http://127.0.0.1:8642
                                       every volume `imgdataset serve OUT` serves, read over
                                       HTTP (fsspec mapper) from its NGFF group /zarr/ID/

The blocks come from one level of each multiscale volume (--level, 0 = finest).
BlockDataset is a PyTorch map-style Dataset when torch is importable (each item a
float32 tensor of shape (1, size, size, size), ready for a DataLoader) and a plain
Python sequence of numpy arrays otherwise. Item i is always the same block for the
same seed, whichever worker asks for it.

--json prints, instead of a summary, what the tests of imgdataset check: every volume
with its levels (path, shape, scale, axis names and units) and the sha256 of each
block and of one corner block of every level.

Needs numpy and zarr 2.x; --url also needs fsspec and aiohttp.
"""

import argparse
import hashlib
import json
import os
import sys
import urllib.request

import numpy as np
import zarr

try:
    import torch
    from torch.utils.data import Dataset as _Base
except ImportError:  # plain iterator without PyTorch
    torch = None
    _Base = object

SPACE = ("z", "y", "x")


class Volume:
    """One NGFF multiscale group: its levels (zarr arrays, finest first),
    axes and per-level scale."""

    def __init__(self, name, group):
        self.name = name
        self.group = group
        ms = group.attrs["multiscales"][0]
        self.axes = [a["name"] for a in ms["axes"]]
        self.units = [a.get("unit", "") for a in ms["axes"]]
        self.paths = [d["path"] for d in ms["datasets"]]
        self.scales = []
        for d in ms["datasets"]:
            scale = [1.0] * len(self.axes)
            for t in d.get("coordinateTransformations", []):
                if t["type"] == "scale":
                    scale = t["scale"]
            self.scales.append(scale)
        self.levels = [group[p] for p in self.paths]

    def spatial(self):
        """Indices of the z, y, x axes, or None when the volume lacks one."""
        try:
            return [self.axes.index(a) for a in SPACE]
        except ValueError:
            return None


def volumes_from_dir(root):
    """Every NGFF 0.4 group (Zarr v2) under root, by path relative to it."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if ".zgroup" in filenames and ".zattrs" in filenames:
            g = zarr.open_group(dirpath, mode="r")
            if "multiscales" in g.attrs:
                out.append(Volume(os.path.relpath(dirpath, root), g))
                dirnames[:] = []  # its levels are inside
    return out


def volumes_from_server(url):
    """Every volume `imgdataset serve` lists that is the finest level of its
    group (a coarser level is reached through its pyramid), by id."""
    import fsspec

    with urllib.request.urlopen(url.rstrip("/") + "/volumes") as r:
        listing = json.load(r)
    out = []
    for v in listing:
        if v.get("zarr_error") or v.get("pyramid"):
            continue
        m = fsspec.get_mapper(url.rstrip("/") + v["zarr_url"])
        out.append(Volume(v["id"], zarr.open_group(m, mode="r")))
    return out


class BlockDataset(_Base):
    """Random size³ blocks of level `level` of the volumes that have three
    spatial axes at least `size` long there (other axes are taken whole).
    Item i is drawn from numpy.random.default_rng([seed, i])."""

    def __init__(self, volumes, size=128, count=1000, seed=0, level=0):
        self.size, self.count, self.seed, self.level = size, count, seed, level
        self.volumes, self.skipped = [], []
        for v in volumes:
            sp = v.spatial()
            if level >= len(v.levels):
                self.skipped.append((v.name, "no level %d" % level))
            elif sp is None:
                self.skipped.append((v.name, "axes %s lack one of z, y, x" % ",".join(v.axes)))
            elif min(v.levels[level].shape[i] for i in sp) < size:
                self.skipped.append((v.name, "level %d shape %s is smaller than %d" % (level, v.levels[level].shape, size)))
            else:
                self.volumes.append(v)
        if not self.volumes:
            raise ValueError("no volume has a level %d of at least %d³ voxels (%s)" % (level, size, self.skipped))

    def __len__(self):
        return self.count

    def box(self, i):
        """The volume and the index tuple of item i."""
        rng = np.random.default_rng([self.seed, i])
        v = self.volumes[rng.integers(len(self.volumes))]
        a = v.levels[self.level]
        sel = [slice(None)] * a.ndim
        for ax in v.spatial():
            o = int(rng.integers(a.shape[ax] - self.size + 1))
            sel[ax] = slice(o, o + self.size)
        return v, tuple(sel)

    def block(self, i):
        """Item i as a numpy array, with the volume and box it came from."""
        v, sel = self.box(i)
        return v, sel, np.ascontiguousarray(v.levels[self.level][sel])

    def item(self, b):
        """A block as the dataset yields it: a (1, z, y, x) float32 tensor
        with torch, the numpy array itself without."""
        if torch is not None:
            return torch.from_numpy(b.astype(np.float32))[None]
        return b

    def __getitem__(self, i):
        if not 0 <= i < self.count:
            raise IndexError(i)
        return self.item(self.block(i)[2])

    def __iter__(self):
        for i in range(self.count):
            yield self[i]


def digest(a):
    """sha256 of an array's bytes, C order, little-endian."""
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()


def report(vols, ds):
    """What --json prints."""
    out = {"torch": torch is not None, "len": len(ds), "volumes": [], "blocks": [], "skipped": ds.skipped}
    for v in vols:
        levels = []
        for k, a in enumerate(v.levels):
            corner = tuple(slice(0, min(n, ds.size)) for n in a.shape)
            levels.append({"path": v.paths[k], "shape": list(a.shape), "dtype": str(a.dtype), "scale": v.scales[k],
                           "corner_sha256": digest(a[corner])})
        out["volumes"].append({"name": v.name, "axes": v.axes, "units": v.units, "levels": levels})
    for i in range(len(ds)):
        v, sel, b = ds.block(i)
        # The first through the Dataset protocol itself, the others without
        # reading their block twice.
        item = ds[i] if i == 0 else ds.item(b)
        out["blocks"].append({"volume": v.name, "level": ds.level, "origin": [s.start or 0 for s in sel],
                              "shape": list(b.shape), "sha256": digest(b),
                              "item": type(item).__module__ + "." + type(item).__name__, "item_shape": list(item.shape)})
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dir", help="an imgdataset output directory (its OME-Zarr copies)")
    src.add_argument("--url", help="an `imgdataset serve` base URL")
    p.add_argument("--size", type=int, default=128, help="block edge in voxels (default 128)")
    p.add_argument("--count", type=int, default=16, help="number of blocks (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--level", type=int, default=0, help="multiscale level (0 = finest)")
    p.add_argument("--json", action="store_true", help="print volumes, levels and block checksums as JSON")
    args = p.parse_args()

    vols = volumes_from_dir(args.dir) if args.dir else volumes_from_server(args.url)
    if not vols:
        sys.exit("no OME-Zarr (NGFF 0.4) volume found")
    try:
        ds = BlockDataset(vols, size=args.size, count=args.count, seed=args.seed, level=args.level)
    except ValueError as e:
        sys.exit(str(e))
    if args.json:
        json.dump(report(vols, ds), sys.stdout)
        print()
        return
    for v in vols:
        units = ",".join("%s %g %s" % (a, s, u) for a, s, u in zip(v.axes, v.scales[0], v.units))
        print("%s: %d levels %s, voxel %s" % (v.name, len(v.levels), [list(a.shape) for a in v.levels], units))
    for name, why in ds.skipped:
        print("skipped %s: %s" % (name, why))
    kind = "torch Dataset" if torch is not None else "plain iterator"
    for i, b in enumerate(ds):
        print("block %d (%s): shape %s, mean %.2f" % (i, kind, tuple(b.shape), float(b.mean())))


if __name__ == "__main__":
    main()

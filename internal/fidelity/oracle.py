# Reads arrays with the readers a user would pick (tifffile, hyperspy,
# zarr-python and its N5Store) for the fidelity test. One JSON request per
# line of stdin: {"reader", "path", "array", "region"}; one JSON answer per
# line of stdout: the sha256_16 of the region (C order, little-endian), its
# shape, and per axis its name, raw unit and size in nm (null when the axis
# has no length calibration), or {"error"}.
#
# Readers: "tiff" (tifffile: OME-XML PhysicalSize*, else the ImageJ
# description and X/YResolution), "dm" (hyperspy), "zarr" (zarr-python 2,
# OME-NGFF 0.4 multiscales), "n5" (zarr.N5Store; resolution/units
# attributes, which N5 lists x first), "zarr3-meta" (zarr.json read as JSON,
# for Zarr v3 that zarr-python 2 cannot open: metadata only),
# "precomputed-meta" (the info file as JSON: metadata only).
import sys, json, hashlib, warnings, os, re
warnings.simplefilter("ignore")
import numpy as np

# Nanometres per length unit, written here rather than taken from the tool.
NM = {"pm": 1e-3, "picometer": 1e-3, "a": 0.1, "å": 0.1, "angstrom": 0.1,
      "nm": 1.0, "nanometer": 1.0, "um": 1e3, "µm": 1e3, "μm": 1e3, "micron": 1e3,
      "micrometer": 1e3, "mm": 1e6, "millimeter": 1e6, "cm": 1e7, "centimeter": 1e7,
      "m": 1e9, "meter": 1e9, "inch": 2.54e7}

def nm(scale, unit):
    if scale is None or unit is None:
        return None
    f = NM.get(unit.replace("\\u00B5", "µ").replace("\\u00b5", "µ").strip().lower())
    return None if f is None else float(scale) * f

def axis(name, scale, unit):
    return {"name": name, "unit": unit, "nm": nm(scale, unit)}

def sha(a):
    c = np.ascontiguousarray(a)
    c = c.astype(c.dtype.newbyteorder("<"))
    return hashlib.sha256(c.tobytes()).hexdigest()[:16]

def read_tiff(path):
    import tifffile
    with tifffile.TiffFile(path) as t:
        s = t.series[0]
        a = s.asarray()
        names = s.axes.lower()
        scales, units = {}, {}
        if t.is_ome:
            px = tifffile.xml2dict(t.ome_metadata)["OME"]["Image"]
            px = (px[0] if isinstance(px, list) else px)["Pixels"]
            for k in "XYZ":
                if "PhysicalSize" + k in px:
                    scales[k.lower()] = px["PhysicalSize" + k]
                    units[k.lower()] = px.get("PhysicalSize" + k + "Unit", "µm")
        else:
            p = t.pages[0]
            ij = t.imagej_metadata or {}
            ru = p.tags["ResolutionUnit"].value if "ResolutionUnit" in p.tags else 2
            unit = ij.get("unit") if ij else {2: "inch", 3: "cm"}.get(int(ru))
            for k, tag in (("x", "XResolution"), ("y", "YResolution")):
                if tag in p.tags and unit:
                    num, den = p.tags[tag].value
                    scales[k], units[k] = den / num, unit
            if "spacing" in ij and unit:
                scales["z"], units["z"] = ij["spacing"], unit
        return a, [axis(n, scales.get(n), units.get(n)) for n in names]

def read_dm(path):
    import hyperspy.api as hs
    s = hs.load(path)
    axes = sorted(s.axes_manager._axes, key=lambda x: x.index_in_array)
    return np.asarray(s.data), [axis(x.name, x.scale, x.units if isinstance(x.units, str) else None) for x in axes]

def ngff(attrs, array):
    ms = attrs.get("ome", attrs)["multiscales"][0]
    ds = ms["datasets"][0] if array == "" else [d for d in ms["datasets"] if d["path"] == array][0]
    scale = [c["scale"] for c in ds["coordinateTransformations"] if c["type"] == "scale"][0]
    for c in ms.get("coordinateTransformations", []):
        if c["type"] == "scale":
            scale = [a * b for a, b in zip(scale, c["scale"])]
    # NGFF 0.6 moves the axes into coordinate systems.
    axes = ms.get("axes") or ms["coordinateSystems"][0]["axes"]
    return ds["path"], [axis(x["name"], sc, x.get("unit")) for x, sc in zip(axes, scale)]

def read_zarr(path, array):
    import zarr
    g = zarr.open(path, mode="r")
    if isinstance(g, zarr.Array):
        return g[...], [axis(n, None, None) for n in "zyx"[-g.ndim:]]
    key, axes = ngff(dict(g.attrs), array)
    return g[key][...], axes

def read_n5(path):
    import zarr
    try:
        z = zarr.open_array(zarr.N5Store(path), mode="r")
    except (KeyError, ValueError, zarr.errors.ArrayNotFoundError):
        # A dataset inside a container (n5-java's layout): open it from there.
        z = zarr.open_array(zarr.N5Store(os.path.dirname(path)), path=os.path.basename(path), mode="r")
    attrs = dict(z.attrs)
    names = list(reversed(attrs.get("axes", []))) or ["z", "y", "x"][-z.ndim:]
    res = list(reversed(attrs["resolution"])) if "resolution" in attrs else [None] * z.ndim
    units = list(reversed(attrs["units"])) if "units" in attrs else [None] * z.ndim
    return z[...], [axis(n, r, u) for n, r, u in zip(names, res, units)]

def meta_zarr3(path, array):
    with open(os.path.join(path, "zarr.json")) as f:
        g = json.load(f)
    key, axes = ngff(g["attributes"], array)
    with open(os.path.join(path, key, "zarr.json")) as f:
        a = json.load(f)
    return a, axes

def meta_precomputed(path, array):
    with open(os.path.join(path, "info")) as f:
        info = json.load(f)
    sc = info["scales"][0] if array == "" else [s for s in info["scales"] if s["key"] == array][0]
    return info, [axis(n, r, "nm") for n, r in zip("zyx", reversed(sc["resolution"]))]

for line in sys.stdin:
    req = json.loads(line)
    try:
        r, p, arr = req["reader"], req["path"], req.get("array", "")
        if r in ("zarr3-meta", "precomputed-meta"):
            meta, axes = (meta_zarr3 if r == "zarr3-meta" else meta_precomputed)(p, arr)
            res = {"axes": axes, "meta": meta}
        else:
            a, axes = {"tiff": lambda: read_tiff(p), "dm": lambda: read_dm(p), "zarr": lambda: read_zarr(p, arr),
                       "n5": lambda: read_n5(p)}[r]()
            if req.get("region"):
                a = a[tuple(slice(o, o + n) for o, n in req["region"])]
            res = {"sha": sha(a), "shape": list(a.shape), "dtype": a.dtype.name, "sum": float(a.astype(np.float64).sum()), "axes": axes}
        print(json.dumps(res, default=str))
    except Exception as e:
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
    sys.stdout.flush()

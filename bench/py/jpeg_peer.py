"""The peer of bench/jpeg.sh: PIL (Pillow on libjpeg-turbo, the decoder
CloudVolume's simplejpeg and tensorstore also use) on the same chunk files.

  jpeg_peer.py encode RAWDIR OUTDIR   write OUTDIR/NNN.jpg: each 64x4096 grey raw chunk at q75, as
                                      Neuroglancer's writers (libjpeg) store a 64^3 chunk
  jpeg_peer.py rate DIR MIN_SECONDS   decode every DIR/*.jpg in a loop for at least MIN_SECONDS of
                                      process CPU time; print one JSON line like jpegbench rate

Each decode is Image.open + load on the bytes in memory, i.e. the decoded
chunk in a new buffer, as jpegbench measures its own.
"""
import glob
import io
import json
import os
import sys
import time

import PIL
from PIL import Image, features

SIDE = 64


def encode(rawdir, outdir):
    os.makedirs(outdir, exist_ok=True)
    for p in sorted(glob.glob(os.path.join(rawdir, "*.raw"))):
        im = Image.frombytes("L", (SIDE, SIDE * SIDE), open(p, "rb").read())
        name = os.path.splitext(os.path.basename(p))[0]
        im.save(os.path.join(outdir, name + ".jpg"), "JPEG", quality=75)


def rate(d, min_s):
    chunks = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(d, "*.jpg")))]
    if not chunks:
        sys.exit("no .jpg in " + d)
    for c in chunks:  # untimed pass
        Image.open(io.BytesIO(c)).load()
    px = decodes = 0
    c0, t0 = time.process_time(), time.perf_counter()
    cpu = 0.0
    while cpu < min_s:
        for c in chunks:
            im = Image.open(io.BytesIO(c))
            im.load()
            px += im.size[0] * im.size[1]
            decodes += 1
        cpu = time.process_time() - c0
    wall = time.perf_counter() - t0
    tool = "PIL %s on libjpeg-turbo %s" % (PIL.__version__, features.version("libjpeg_turbo") or features.version("jpg"))
    print(json.dumps({"tool": tool, "set": os.path.basename(d.rstrip("/")), "chunks": len(chunks), "decodes": decodes,
                      "pixels": px, "cpu_s": cpu, "wall_s": wall, "mpx_per_cpu_s": px / cpu / 1e6}))


if __name__ == "__main__":
    if sys.argv[1] == "encode":
        encode(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "rate":
        rate(sys.argv[2], float(sys.argv[3]))
    else:
        sys.exit("usage: jpeg_peer.py encode RAWDIR OUTDIR | rate DIR MIN_SECONDS")

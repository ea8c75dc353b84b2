"""Single-core JPEG decode rate of PIL (libjpeg-turbo) on chunk files, for
bench/cmd/cropbench: the reference the crop's voxel rate is compared with.

  pil_decode_rate.py SECONDS CHUNK_FILE...

Decodes the chunks round robin on this one thread (as 8-bit grayscale into a
numpy array, as CloudVolume does) for at least SECONDS and prints one line:

  pil <version> libjpeg-turbo <version> chunks N voxels V wall_s W cpu_s C mvox_wall X mvox_cpu Y

cpu_s is the thread's own CPU time (RUSAGE_THREAD), which other processes'
load does not dilute.
"""
import io
import resource
import sys
import time

import numpy as np
from PIL import Image, features


def thread_cpu():
    r = resource.getrusage(resource.RUSAGE_THREAD)
    return r.ru_utime + r.ru_stime


def main():
    seconds = float(sys.argv[1])
    chunks = [open(p, "rb").read() for p in sys.argv[2:]]
    if not chunks:
        sys.exit("no chunk files")
    vox = 0
    c0, t0 = thread_cpu(), time.perf_counter()
    i = 0
    while True:
        im = Image.open(io.BytesIO(chunks[i % len(chunks)]))
        a = np.asarray(im)
        vox += a.shape[0] * a.shape[1]
        i += 1
        if i % 16 == 0 and time.perf_counter() - t0 >= seconds:
            break
    wall, cpu = time.perf_counter() - t0, thread_cpu() - c0
    print("pil %s libjpeg-turbo %s chunks %d voxels %d wall_s %.3f cpu_s %.3f mvox_wall %.1f mvox_cpu %.1f"
          % (Image.__version__, features.version("libjpeg_turbo"), len(chunks), vox, wall, cpu,
             vox / wall / 1e6, vox / cpu / 1e6), flush=True)


if __name__ == "__main__":
    main()

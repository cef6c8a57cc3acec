"""Times single-precision C = A·B in PyTorch or NumPy, for the Go benchmark's comparison.

Usage: sgemm_bench.py torch|numpy THREADS M,N,K [M,N,K ...]

Prints a line "backend ..." naming the BLAS core in use (Debian's torch and numpy both call
OpenBLAS for sgemm; it reads OPENBLAS_CORETYPE, which can pin an older core), then one line
per shape: "M N K GFLOP/s GFLOP-per-CPU-second".
Each shape is timed over repeated products for at least half a second, after one warm-up.
"""
import ctypes
import os
import sys
import time


def openblas_core():
    """The OpenBLAS core this process loaded, read from the library itself."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "/libopenblas" in line}
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return "openblas %s (%s)" % (lib.openblas_get_corename().decode(), path)
        except (OSError, AttributeError):
            continue
    return "no OpenBLAS loaded"


def main():
    lib, threads, shapes = sys.argv[1], int(sys.argv[2]), [tuple(map(int, s.split(","))) for s in sys.argv[3:]]
    # Both torch's own pool and the OpenBLAS it calls for sgemm: set before either loads.
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(threads)
    if lib == "torch":
        import torch

        torch.set_num_threads(threads)
        gen = torch.Generator().manual_seed(1)

        def setup(m, n, k):
            a, b = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
            c = torch.empty(m, n)
            return lambda: torch.mm(a, b, out=c)

    else:
        import numpy as np

        rng = np.random.default_rng(1)

        def setup(m, n, k):
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            c = np.empty((m, n), dtype=np.float32)
            return lambda: np.matmul(a, b, out=c)

    lines = []
    for m, n, k in shapes:
        run = setup(m, n, k)
        run()
        count, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
        while True:
            run()
            count += 1
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            if wall >= 0.5:
                break
        flop = 2.0 * m * n * k * count
        lines.append("%d %d %d %.2f %.2f" % (m, n, k, flop / wall / 1e9, flop / cpu / 1e9))
    print("backend %s %s threads=%d: %s" % (lib, (torch.__version__ if lib == "torch" else np.__version__), threads, openblas_core()))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

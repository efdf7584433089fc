"""The dense products of the EM code, in one place, so that a benchmark can say how much of a run
is BLAS and how fast that BLAS runs.

Every large product of the UBM and i-vector code goes through :func:`matmul`, :func:`gram`,
:func:`matmul_acc` or the Cholesky helpers. When :data:`METER` is on (``with metered() as m:``) each
call adds its wall time and its floating-point operations (2mkn for a product) to the meter;
off, the cost is one attribute test per call. bench/bench_ivector.py divides the wall time of an
EM stage into the meter's seconds (BLAS) and the rest (gathers, exp/log, Python, I/O).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas as _blas
from scipy.linalg import lapack as _lapack

__all__ = ["METER", "BlasMeter", "metered", "matmul", "matmul_acc", "gram"]


@dataclass
class BlasMeter:
    enabled: bool = False
    seconds: float = 0.0
    flops: float = 0.0
    calls: int = 0

    def add(self, start: float, flops: float) -> None:
        self.seconds += time.perf_counter() - start
        self.flops += flops
        self.calls += 1


METER = BlasMeter()


@contextmanager
def metered():
    """Count BLAS time and flops inside the block (the meter is reset on entry)."""
    METER.enabled, METER.seconds, METER.flops, METER.calls = True, 0.0, 0.0, 0
    try:
        yield METER
    finally:
        METER.enabled = False


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a @ b (2-D, or stacked 3-D), metered."""
    if not METER.enabled:
        return np.matmul(a, b, out=out)
    start = time.perf_counter()
    result = np.matmul(a, b, out=out)
    batch = a.shape[0] if a.ndim == 3 else 1
    METER.add(start, 2.0 * batch * a.shape[-2] * a.shape[-1] * b.shape[-1])
    return result


def matmul_acc(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """out += a @ b in place (out C-contiguous, same dtype as a and b): one gemm with beta = 1,
    no temporary the size of out."""
    start = time.perf_counter() if METER.enabled else 0.0
    gemm = _blas.sgemm if out.dtype == np.float32 else _blas.dgemm
    # out (m, n) in C order is out.T (n, m) in Fortran order, and out.T += b.T @ a.T.
    result = gemm(1.0, b.T, a.T, beta=1.0, c=out.T, overwrite_c=True)
    if not np.shares_memory(result, out):
        out += result.T
    if METER.enabled:
        METER.add(start, 2.0 * a.shape[0] * a.shape[1] * b.shape[1])


def gram(x: np.ndarray) -> np.ndarray:
    """xᵀx (n, D) -> (D, D). A general product, not syrk: OpenBLAS's syrk runs at under half of
    its gemm speed for D ~ 60-80 (bench/bench_ivector.py's machine), so the 2x flops still win."""
    if not METER.enabled:
        return x.T @ x
    start = time.perf_counter()
    out = x.T @ x
    METER.add(start, 2.0 * x.shape[0] * x.shape[1] ** 2)
    return out


def cholesky(a: np.ndarray) -> np.ndarray:
    """Batched lower Cholesky factors (B, R, R) of SPD float64 matrices (numpy's potrf loop: on
    this machine 2x torch's). Raises ValueError when a matrix is not positive definite."""
    start = time.perf_counter() if METER.enabled else 0.0
    try:
        chol = np.linalg.cholesky(a)
    except np.linalg.LinAlgError as exc:
        raise ValueError("matrix is not positive definite") from exc
    if METER.enabled:
        METER.add(start, a.shape[0] * a.shape[-1] ** 3 / 3.0)
    return chol


def cholesky_inverse(chol: np.ndarray) -> np.ndarray:
    """(B, R, R) symmetric inverses from lower Cholesky factors: LAPACK potri per matrix (R³·2/3
    flops; numpy has no batched potri, and torch's is 1.5x slower here), then the other triangle."""
    start = time.perf_counter() if METER.enabled else 0.0
    r = chol.shape[-1]
    out = np.empty_like(chol)
    upper = np.triu_indices(r, 1)
    for i in range(chol.shape[0]):
        # C-order lower L is Fortran-order upper Lᵀ: potri(lower=0) then fills the upper triangle of
        # the Fortran result, i.e. the lower one in C order.
        inv, info = _lapack.dpotri(chol[i].T, lower=0)
        if info != 0:
            raise ValueError(f"potri failed (info {info})")
        inv = inv.T
        inv[upper] = inv.T[upper]
        out[i] = inv
    if METER.enabled:
        METER.add(start, chol.shape[0] * 2.0 * r**3 / 3.0)
    return out


def cholesky_solve(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve P X = rhs for each P = L Lᵀ of the stack: rhs (B, R) or (B, R, K); LAPACK potrs per
    matrix (two triangular solves, 2R²K flops). Not torch's: importing torch costs a process ~3 s,
    more than the solves of a whole job."""
    start = time.perf_counter() if METER.enabled else 0.0
    out = np.empty(rhs.shape, dtype=np.float64)
    for i in range(chol.shape[0]):
        # C-order lower L is Fortran-order upper Lᵀ (see cholesky_inverse)
        x, info = _lapack.dpotrs(chol[i].T, rhs[i], lower=0)
        if info != 0:
            raise ValueError(f"potrs failed (info {info})")
        out[i] = x
    if METER.enabled:
        METER.add(start, rhs.shape[0] * 2.0 * rhs.shape[1] ** 2 * (1 if rhs.ndim == 2 else rhs.shape[2]))
    return out


def spd_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """X with a X = b for a stack of SPD matrices a (B, R, R) and right-hand sides b (B, R, K)."""
    return cholesky_solve(cholesky(a), b)

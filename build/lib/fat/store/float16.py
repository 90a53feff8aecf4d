"""float32 -> float16 rounding and the per-column statistics of the result, in one pass.

numpy's float16 casts are scalar code in the wheels (its x86-64-v2 baseline has no F16C), and
featurize rounds every log-mel value and needs the sum and sum of squares of the rounded values
for the split's statistics (BENCHMARKS.md has what that cost). A numba kernel rounds the
float32 bit pattern to float16's 10 mantissa bits with integer operations and accumulates the
statistics from the rounded values while they are in registers.

Importing this module imports numba and the first call compiles the kernel or loads it from
numba's cache, so the store imports it only when it encodes clips.
"""

import numba
import numpy as np

# float32 exponent field (bits 23-30) of float16's normal range, 2**-14 <= |x| < 2**16.
_NORMAL_LOW = np.uint32(113 << 23)
_NORMAL_HIGH = np.uint32(143 << 23)
_HALF_ULP = np.uint32((1 << 12) - 1)  # just under half of float16's last place, in float32 bits
_KEEP = np.uint32(0xFFFFE000)  # float32 bits that survive in a float16
_REBIAS = np.uint32((127 - 15) << 10)  # float32 exponent bias minus float16's, at bit 10
_MAGNITUDE = np.uint32(0x7FFFFFFF)


@numba.njit(nogil=True, cache=True)
def _round_rows(bits, half, rounded_bits, rounded, sums):  # pragma: no cover - compiled
    """Round each row of `bits` (float32 bit patterns, (T, M)) to float16 into `half` (uint16),
    add the rounded values and their squares to `sums` (2, M); `rounded_bits` and `rounded`
    are one (M,) scratch row seen as uint32 and float32. Returns how many values fell outside
    float16's normal range (zeros, subnormals, overflow, inf, NaN), whose results are wrong."""
    outside = 0
    for t in range(bits.shape[0]):
        for m in range(bits.shape[1]):
            b = bits[t, m]
            # Round to nearest even at bit 13: add just under half, plus the kept lowest bit.
            r = (b + _HALF_ULP + ((b >> 13) & 1)) & _KEEP
            rounded_bits[m] = r
            magnitude = r & _MAGNITUDE
            if magnitude < _NORMAL_LOW or magnitude >= _NORMAL_HIGH:
                outside += 1
            half[t, m] = ((r >> 16) & 0x8000) | ((magnitude >> 13) - _REBIAS)
        for m in range(bits.shape[1]):
            value = np.float64(rounded[m])
            sums[0, m] += value
            sums[1, m] += value * value
    return outside


def to_float16_with_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float16 nearest to each value of a (T, M) array (ties to even, as numpy's cast),
    C-contiguous, and the (2, M) float64 per-column sum and sum of squares of those float16
    values."""
    x = np.ascontiguousarray(values, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {x.shape}")
    half = np.empty(x.shape, dtype=np.uint16)
    scratch = np.empty(x.shape[1], dtype=np.uint32)
    sums = np.zeros((2, x.shape[1]))
    if _round_rows(x.view(np.uint32), half, scratch, scratch.view(np.float32), sums) == 0:
        return half.view(np.float16), sums
    # Rare (a value within 6e-5 of 0 dB, or inf/NaN): numpy's cast for the whole array.
    with np.errstate(over="ignore", invalid="ignore"):
        exact16 = x.astype(np.float16)
    exact = exact16.astype(np.float32)
    sums = np.stack(
        [exact.sum(axis=0, dtype=np.float64), np.square(exact).sum(axis=0, dtype=np.float64)]
    )
    return exact16, sums

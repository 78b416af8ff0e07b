"""The spatial-temporal stream: camera-pair time-gap histograms, Parzen smoothing, lookup.

Step 4 learns, for every ordered camera pair (a, b), a histogram of the time gaps between the
sightings of the same training identity in camera a and in camera b, where a is the camera
that saw the person later. Step 5 smooths each histogram with a truncated Gaussian (a Parzen
window) and looks up the probability p of a query/gallery pair's time gap, which
:mod:`streid.fusion` fuses with the visual similarity.

Everything here is vectorised and gives the same numbers as the original's per-element loops
(``benchmarks/reference.py`` keeps those loops, and the tests compare the two).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.ndimage

from .errors import UserError, check_memory, warning

EPS = 1e-7  # the original's guard in every division by a count or a histogram sum


def check_cameras(cams: np.ndarray, num_cameras: int, what: str, names: Sequence[str] = ()):
    """UserError if a camera id has no row in a ``num_cameras`` x ``num_cameras`` histogram.

    Args:
        cams: (N,) 1-based camera ids.
        what: where the ids come from, for the message (e.g. "query_cam").
        names: optional file names, to name the offending file.
    """
    bad = np.flatnonzero((cams < 1) | (cams > num_cameras))
    if bad.size:
        i = int(bad[0])
        where = f" ({names[i]})" if len(names) else ""
        raise UserError(
            f"{what} holds camera id {int(cams[i])}{where}, but the spatial-temporal "
            f"histogram has rows for cameras 1-{num_cameras} only"
        )


def time_gap_bins(later_frames: np.ndarray, earlier_frames: np.ndarray, interval: float):
    """``int(|a - b| / interval)`` elementwise, as the original's ``int(diff / interval)``.

    For integer frames, ``//`` gives exactly the truncation of the true division (the gap
    is never negative), and it stays an integer array.
    """
    gap = np.abs(later_frames - earlier_frames)
    if np.issubdtype(gap.dtype, np.integer) and float(interval).is_integer():
        return gap // int(interval)
    return (gap / interval).astype(np.int64)


def mean_frames(labels, cams, frames, num_cameras: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean frame of each identity in each camera, as the original: ``sum / (count +
    1e-7)``.

    Args:
        labels: (N,) class index of each training image, 0..K-1.
        cams: (N,) 1-based camera ids, at most ``num_cameras``.
        frames: (N,) frame numbers.

    Returns:
        (mean, counts): two (K, num_cameras) float64 arrays; ``counts`` is 0 where an
        identity was not seen in a camera.

    Raises:
        UserError: empty input, a negative label, or a camera id out of range.
    """
    labels = np.asarray(labels, dtype=np.int64)
    cams = np.asarray(cams, dtype=np.int64)
    if labels.size == 0:
        raise UserError("no training images: the spatial-temporal model needs train_all/")
    if labels.min() < 0:
        raise UserError("training labels must be class indices 0..K-1, found a negative one")
    check_cameras(cams, num_cameras, "the training set")
    num_classes = int(labels.max()) + 1
    cell = labels * num_cameras + (cams - 1)
    size = num_classes * num_cameras
    # Sums of integer frames are exact in float64, in any order.
    sums = np.bincount(cell, weights=np.asarray(frames, dtype=np.float64), minlength=size)
    counts = np.bincount(cell, minlength=size).astype(np.float64)
    sums, counts = sums.reshape(num_classes, num_cameras), counts.reshape(num_classes, -1)
    return sums / (counts + EPS), counts


def walks(labels: np.ndarray, sessions: np.ndarray | None) -> np.ndarray:
    """The walk of each image, 0..W-1: one per (person, session), in (person, session)
    order; without sessions, the labels themselves (a person is one walk)."""
    if sessions is None:
        return np.asarray(labels)
    pairs = np.stack([np.asarray(labels), np.asarray(sessions)], axis=1)
    return np.unique(pairs, axis=0, return_inverse=True)[1].ravel()


def walk_gaps(labels, cams, frames, num_cameras: int, sessions=None):
    """Every time gap step 4 counts, one per walk seen by two cameras.

    For each walk (an identity, or with sessions an identity within one session) and camera,
    the mean frame of its images (:func:`mean_frames`); for each walk seen in both cameras
    j < k, the gap between the two means, counted for the pair (later camera, earlier
    camera): ``[j][k]`` if the mean in j is later, else ``[k][j]`` (ties go to ``[k][j]``).

    Returns:
        (persons, later, earlier, gap): the walk's label, the 0-based cameras and the gap
        (>= 0) of each, walk by walk.
    """
    if sessions is not None and len(sessions) != len(labels):
        raise ValueError("one session id per image expected")
    walk = walks(labels, sessions)
    mean, counts = mean_frames(walk, cams, frames, num_cameras)
    j, k = np.triu_indices(num_cameras, k=1)  # all camera pairs j < k
    seen = (counts[:, j] > 0) & (counts[:, k] > 0)  # (walks, pairs)
    mean_j, mean_k = mean[:, j], mean[:, k]
    j_later = mean_j > mean_k
    gap = np.where(j_later, mean_j - mean_k, mean_k - mean_j)[seen]
    later = np.where(j_later, j, k)[seen]
    earlier = np.where(j_later, k, j)[seen]
    person_of_walk = np.zeros(mean.shape[0], dtype=np.int64)
    person_of_walk[walk] = np.asarray(labels)
    return person_of_walk[np.nonzero(seen)[0]], later, earlier, gap


def camera_pair_histograms(
    labels: np.ndarray,
    cams: np.ndarray,
    frames: np.ndarray,
    num_cameras: int,
    num_bins: int,
    interval: float,
    sessions: np.ndarray | None = None,
) -> np.ndarray:
    """Step 4: the normalised time-gap histogram of every ordered camera pair.

    Each gap of :func:`walk_gaps` falls in bin ``int(gap / interval)`` of its camera pair;
    each histogram is then divided by ``its sum + 1e-7``.

    Args:
        labels: (N,) class index of each training image, 0..K-1 (ImageFolder targets).
        cams: (N,) 1-based camera ids, at most ``num_cameras``.
        frames: (N,) frame numbers (or times).
        num_cameras, num_bins, interval: from the dataset spec.
        sessions: (N,) session ids, or None: one session (the original).

    Returns:
        (num_cameras, num_cameras, num_bins) float64 array; ``[a][b][t]`` is the share of
        identities seen in camera a about ``t * interval`` frames after camera b.

    Raises:
        UserError: empty input, a camera id out of range, or a gap beyond the last bin.
    """
    _, later, earlier, gap = walk_gaps(labels, cams, frames, num_cameras, sessions)
    bins = (gap / interval).astype(np.int64)
    if bins.size and bins.max() >= num_bins:
        raise UserError(
            f"a training time gap of {gap.max():.0f} falls beyond the last of {num_bins} "
            f"bins of {interval:g}; check the times of train_all/ (or the dataset's "
            f"interval and num_bins)"
        )
    return gap_histograms(later, earlier, bins, num_cameras, num_bins)


def gap_histograms(later, earlier, bins, num_cameras: int, num_bins: int) -> np.ndarray:
    """The histograms of the given gaps (camera pairs and bins), normalised as step 4's."""
    check_memory((num_cameras, num_cameras, num_bins), 8 * 2,
               f"{num_cameras} x {num_cameras} camera-pair histograms of {num_bins:,} bins",
               "check num_cameras and num_bins in the dataset's dataset.yaml")  # fmt: skip
    flat = (later * num_cameras + earlier) * num_bins + bins
    hist = np.bincount(flat, minlength=num_cameras * num_cameras * num_bins).astype(np.float64)
    hist = hist.reshape(num_cameras, num_cameras, num_bins)
    return hist / (hist.sum(axis=2, keepdims=True) + EPS)


def gaussian_kernel(sigma: float, num_bins: int | None = None) -> np.ndarray:
    """The original's truncated Gaussian, ``g(d)`` for ``d = -D..D`` with D = floor(3 sigma).

    ``g(d) = exp(-d^2 / (2 sigma^2)) / (sigma sqrt(2 pi))``, computed with the original's
    expression so that the kernel values are bit-identical.

    Args:
        num_bins: the histograms' length, if known: D is then at most ``num_bins - 1``. The
            terms beyond it never meet a bin, so the smoothing is the same, and a huge sigma
            needs no huge kernel.
    """
    if not (sigma > 0 and math.isfinite(sigma)):
        raise UserError(f"--smooth must be positive and finite (bins), got {sigma}")
    reach = 3 * sigma
    if num_bins is not None:
        reach = min(reach, num_bins - 1)
    half = math.floor(reach)
    check_memory((2 * half + 1,), 8 * 2, f"the Parzen kernel of sigma {sigma:g} bins",
               "give --smooth a smaller sigma")  # fmt: skip
    d = np.arange(half + 1, dtype=np.float64)
    with np.errstate(over="ignore"):  # sigma^2 beyond float64: every g(d) is then g(0)
        g = (
            1.0
            / (sigma * math.sqrt(2 * math.pi))
            * np.exp(-np.power(d, 2) / (2 * np.power(sigma, 2)))
        )
    return np.concatenate([g[:0:-1], g])


def smooth_histograms(distribution: np.ndarray, sigma: float) -> np.ndarray:
    """Step 5's Parzen smoothing of every histogram, then renormalisation.

    ``out[i] = sum over |d| <= floor(3 sigma) of g(|d|) * h[i + d]``, terms outside the
    histogram dropped (the original builds this as a banded matrix product); each smoothed
    histogram is then divided by ``its sum + 1e-7``.

    Args:
        distribution: (C, C, B) histograms from step 4.
        sigma: Gaussian width, in bins (``--smooth``).

    Returns:
        (C, C, B) float64, the smoothed and renormalised histograms.
    """
    distribution = np.asarray(distribution, dtype=np.float64)
    kernel = gaussian_kernel(sigma, distribution.shape[-1])
    smoothed = scipy.ndimage.correlate1d(distribution, kernel, axis=2, mode="constant", cval=0.0)
    return smoothed / (smoothed.sum(axis=2, keepdims=True) + EPS)


class SpatialTemporalModel:
    """Lookup of the smoothed time-gap probability for query/gallery pairs.

    For query (camera qc, frame qf) and gallery (gc, gf): if ``qf > gf`` the probability is
    ``dist[qc-1][gc-1][bin]``, else ``dist[gc-1][qc-1][bin]``, with
    ``bin = int(|qf - gf| / interval)``.

    Deviation from the original: a gap beyond the last bin gets probability 0 (the original
    raises IndexError). Such a gap is longer than any seen in training, so 0 is the value
    the histogram would give it.

    Args:
        smoothed: (C, C, B) output of :func:`smooth_histograms`.
        interval: frames per bin.
    """

    def __init__(self, smoothed: np.ndarray, interval: float):
        self.num_cameras, _, self.num_bins = smoothed.shape
        self.interval = interval
        # One flat table, with a trailing 0 that every out-of-range gap points to.
        self.table = np.append(np.asarray(smoothed, dtype=np.float64).ravel(), 0.0)
        self._outside = self.table.size - 1
        self._factor_key = None

    @classmethod
    def from_histograms(cls, distribution: np.ndarray, sigma: float, interval: float):
        """Smooth step 4's histograms (:func:`smooth_histograms`) and build the lookup."""
        return cls(smooth_histograms(distribution, sigma), interval)

    def check_cameras(self, cams: np.ndarray, what: str, queries: bool = False) -> None:
        """UserError for a camera id without a histogram row; with ``queries``, also for a
        camera whose histograms are all empty (it never appears in training, so no time gap
        of its queries can be scored)."""
        check_cameras(cams, self.num_cameras, what)
        if not queries:
            return
        # Deviation from the original: it ranked such queries by appearance alone, silently.
        table = self.table[:-1].reshape(self.num_cameras, self.num_cameras, self.num_bins)
        trained = (table.sum(axis=(1, 2)) + table.sum(axis=(0, 2))) > 0
        unseen = np.flatnonzero(~trained[np.asarray(cams) - 1])
        if unseen.size:
            camera = int(np.asarray(cams)[unseen[0]])
            raise UserError(
                f"{what} holds camera id {camera}, which never appears in training: its "
                f"camera-pair histograms are empty (no training identity was seen by it and "
                f"by another camera)"
            )

    def check_query_gallery(self, query_cams: np.ndarray, gallery_cams: np.ndarray) -> None:
        """:meth:`check_cameras` of ``pytorch_result.mat``'s query and gallery cameras, as
        every ranking step needs them."""
        self.check_cameras(query_cams, "query_cam", queries=True)
        self.check_cameras(gallery_cams, "gallery_cam")

    def warn_unused_cameras(self, query_cams: np.ndarray, gallery_cams: np.ndarray) -> None:
        """A warning when the histograms have rows for more cameras than the query and
        gallery images use (fewer: :meth:`check_query_gallery` refuses them): step 4's file
        may be of another dataset."""
        used = int(max(np.max(query_cams, initial=0), np.max(gallery_cams, initial=0)))
        if used < self.num_cameras:
            warning(
                f"the spatial-temporal histograms have rows for {self.num_cameras} cameras, but "
                f"the query and gallery images are of cameras 1-{used} only: is "
                f"pytorch_result2.mat (step 4) of this dataset?"
            )

    def table_index(
        self, q_cams, q_frames, g_cams, g_frames, q_sessions=None, g_sessions=None
    ) -> np.ndarray:
        """Flat table index of each pair; arguments broadcast against each other.

        Call with ``q[:, None]`` and ``g[None, :]`` for a (queries, gallery) block. A pair
        from two different sessions (when sessions are given) points to the trailing 0, as
        a gap past the last bin does: times of different sessions are not comparable.
        """
        q_cams, q_frames, g_cams, g_frames = map(_compact, (q_cams, q_frames, g_cams, g_frames))
        q_later = q_frames > g_frames
        later = np.where(q_later, q_cams, g_cams) - 1
        earlier = np.where(q_later, g_cams, q_cams) - 1
        bins = time_gap_bins(q_frames, g_frames, self.interval)
        index = (later * self.num_cameras + earlier) * self.num_bins + bins
        inside = bins < self.num_bins
        if q_sessions is not None and g_sessions is not None:
            inside &= _compact(q_sessions) == _compact(g_sessions)
        return np.where(inside, index, self._outside)

    def probability(
        self, q_cams, q_frames, g_cams, g_frames, q_sessions=None, g_sessions=None
    ) -> np.ndarray:
        """The spatial-temporal probability p of each pair (float64); arguments broadcast."""
        index = self.table_index(q_cams, q_frames, g_cams, g_frames, q_sessions, g_sessions)
        return self.table[index]

    def st_denominator(self, lambda1: float, gamma1: float) -> np.ndarray:
        """``1 + lambda1 exp(-gamma1 p)`` for every table entry: the denominator of the
        joint metric's second factor (the original: ``1 + 2 exp(-alpha p)``).

        Computed once per (lambda1, gamma1) on the table instead of once per pair: the
        elementwise result is the same.
        """
        if self._factor_key != (lambda1, gamma1):
            self._factor = 1 + lambda1 * np.exp(-gamma1 * self.table)
            self._factor_key = (lambda1, gamma1)
        return self._factor


def _compact(values) -> np.ndarray:
    """int32 when the values allow: the pair blocks are large, int32 halves their traffic."""
    values = np.asarray(values)
    if values.dtype.kind in "iu" and (values.size == 0 or np.abs(values).max() < 2**30):
        return values.astype(np.int32, copy=False)
    return values

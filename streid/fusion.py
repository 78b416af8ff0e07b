"""The joint metric: visual similarity and spatial-temporal probability fused (Eqn. 9), the
one function behind every ranking of steps 5 and 6.

Eqn. 9 of the paper is ``f(s; lambda0, gamma0) * f(p; lambda1, gamma1)`` with the logistic
``f(x; lambda, gamma) = 1 / (1 + lambda exp(-gamma x))``; the paper and the original use
lambda0 = 1, lambda1 = 2 and gamma0 = gamma1 = alpha = 5:

    joint = 1 / (1 + exp(-5 s)) * 1 / (1 + 2 exp(-5 p))

Besides it, the rankings by one stream alone (the paper's ablations) and the Eqn. 5 baseline
(the product of the two streams, normalised), which Figure 4 (b) compares with.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import kernels
from .parallel import for_ranges
from .st_model import SpatialTemporalModel

STREAMS = ("joint", "visual", "st", "product")


@dataclass(frozen=True)
class Fusion:
    """The logistic parameters of Eqn. 9 (the paper's and the original's by default)."""

    gamma0: float = 5
    gamma1: float = 5
    lambda0: float = 1
    lambda1: float = 2

    @classmethod
    def of(cls, value) -> Fusion:
        """``value`` if a Fusion; else the original's ``alpha``, both gammas."""
        return value if isinstance(value, Fusion) else cls(gamma0=value, gamma1=value)


def visual_factor(similarity, fusion: Fusion, exp=np.exp):
    """``f(s; lambda0, gamma0)``, in the similarity's precision as in the original (``exp``:
    ``torch.exp`` for a tensor)."""
    if fusion.lambda0 == 1:  # the original's expression, for the same bits
        return 1 / (1 + exp(-fusion.gamma0 * similarity))
    return 1 / (1 + fusion.lambda0 * exp(-fusion.gamma0 * similarity))


def joint_scores(similarity: np.ndarray, st_index: np.ndarray, st: SpatialTemporalModel, fusion):
    """The joint score of Eqn. 9 for a block of pairs.

    Evaluated in the original's order, ``(1/(1+exp(-alpha s)) * 1) / (1+2 exp(-alpha p))``,
    so the values are bit-identical: the first factor in the features' precision (float32
    for step 3's features), the result float64.

    Args:
        similarity: (..., ) cosine similarities s.
        st_index: same shape, from :meth:`SpatialTemporalModel.table_index`.
        fusion: a :class:`Fusion`, or the original's ``alpha``.
    """
    fusion = Fusion.of(fusion)
    denominator = st.st_denominator(fusion.lambda1, fusion.gamma1)
    return visual_factor(similarity, fusion) / denominator[st_index]


def product_scores(similarity: np.ndarray, p: np.ndarray, st: SpatialTemporalModel):
    """The Eqn. 5 baseline: ``(1 + s) / 2 * p / max(p)``.

    Deviation from the original: it has no such stream. The paper only says that both streams
    are normalised; here each is mapped onto [0, 1] by a fixed map that keeps its order (the
    cosine from [-1, 1], the probability by the largest value of the smoothed table), so that
    neither stream's sign or scale decides the product: the ranking is that of ``(1 + s) p``.
    A pair with p = 0 (a gap no training identity made) scores 0, whatever it looks like.
    """
    top = st.table.max()
    return (1 + similarity) / 2 * (p / (top if top > 0 else 1.0))


def normalize_rows(features: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """L2-normalise each row, with the original's expression (bit-identical results).

    Args:
        features: (N, D) array.
        out: where to write the result (``features`` itself to normalise in place).
    """
    norms = np.power(np.sum(np.power(features, 2), axis=1), 0.5)
    return np.divide(features, norms[:, None], out=out)


def normalized(split):
    """``split`` with its features L2-normalised (:func:`normalize_rows`), as every
    ranking's; the split itself is left as it is."""
    return replace(split, features=normalize_rows(split.features))


def pair_index(query, gallery, st: SpatialTemporalModel) -> np.ndarray:
    """(len(query), len(gallery)) table indices of every pair of two blocks
    (:meth:`SpatialTemporalModel.table_index`, sessions included where both sides have them)."""
    q_sessions, g_sessions = query.sessions, gallery.sessions
    if q_sessions is not None and g_sessions is not None:
        q_sessions, g_sessions = q_sessions[:, None], g_sessions[None, :]
    return st.table_index(query.cams[:, None], query.frames[:, None], gallery.cams[None, :],
                          gallery.frames[None, :], q_sessions, g_sessions)  # fmt: skip


def pair_scores(query, gallery, st: SpatialTemporalModel, fusion, stream: str = "joint", *,
                similarity=None, out=None, transpose=False):  # fmt: skip
    """Scores of every (query, gallery) pair of two blocks: the one function behind the
    rankings of step 5 and the all-pairs matrix of step 6.

    Args:
        query, gallery: :class:`streid.interchange.Split` blocks with L2-normalised features.
        fusion: a :class:`Fusion`, or the original's ``alpha`` (both gammas).
        stream: "joint" (the paper's score), "visual" (cosine similarity only), "st"
            (spatial-temporal probability only): the ablations of the paper's table; or
            "product", the Eqn. 5 baseline of Figure 4 (b).
        similarity: optional C-contiguous array of the features' type, of
            len(query) x len(gallery) entries, for the similarities, reused from block to
            block (a new 100 MB array pays its page faults every time); with ``transpose``
            the product is taken as (len(gallery), len(query)).
        out: optional array for the scores, (len(query), len(gallery)) or, with
            ``transpose``, (len(gallery), len(query)); written as ``astype`` would.

    Returns:
        (len(query), len(gallery)) scores, higher is better (``out`` where given; the
        similarities themselves for "visual"), or their transpose.
    """
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}, expected one of {STREAMS}")
    # Deviation from the original: one matrix product per block of queries, not one
    # matrix-vector product per query. The two round differently in the last float32 bit,
    # which can swap two gallery images whose scores agree to about 1e-7.
    if stream != "st":
        # With ``transpose``, the product in the output's orientation, whose rows the
        # compiled pass reads in order; each entry is the same dot product, which NumPy's
        # BLAS gives the same bits either way (tests/test_rerank_features.py checks it).
        lines, columns = (gallery, query) if transpose else (query, gallery)
        if similarity is not None:
            similarity = similarity.reshape(len(lines), len(columns))
        similarity = np.matmul(lines.features, columns.features.T, out=similarity)
        if stream == "joint" and compiled(similarity, query, gallery, st, fusion):
            return joint_block(similarity, query, gallery, st, fusion, out, transpose)
        similarity = similarity.T if transpose else similarity
    index = None if stream == "visual" else pair_index(query, gallery, st)
    scores = stream_scores(stream, similarity, index, st, fusion)
    scores = scores.T if transpose else scores
    if out is None:
        return scores
    out[...] = scores
    return out


def stream_scores(stream: str, similarity, st_index, st: SpatialTemporalModel, fusion):
    """The scores of ``stream`` (see :func:`pair_scores`) from a block's cosine similarities
    and table indices (:meth:`SpatialTemporalModel.table_index`); each stream reads only
    what it needs."""
    if stream == "st":
        return st.table[st_index]
    if stream == "visual":
        return similarity
    if stream == "product":
        return product_scores(similarity, st.table[st_index], st)
    return joint_scores(similarity, st_index, st, fusion)


# Row strides of the compiled pass: a piece of this many pairs (similarities and scores) of
# a thread stays in the cache from the exp to the lookup.
PIECE = 2**19


def compiled(similarity, query, gallery, st: SpatialTemporalModel, fusion) -> bool:
    """Whether :func:`joint_block` gives :func:`joint_scores`'s bits for these pairs.

    Its time-gap bin is ``int(gap / interval)`` in float64, which for whole times and a
    whole interval equals the integer division of :func:`streid.st_model.time_gap_bins`
    wherever ``num_bins * interval < 2**53`` (a gap is exact in float64 below 2**53, and a
    quotient below num_bins then rounds to within the same whole number). Fusion parameters
    that are NumPy float64 scalars make NumPy's visual factor float64, and the kernel's
    table indices are int32: NumPy's path for those.
    """
    fusion = Fusion.of(fusion)
    dtype = similarity.dtype
    return (
        dtype in (np.float32, np.float64)
        and np.result_type(fusion.gamma0, dtype) == dtype
        and np.result_type(fusion.lambda0, dtype) == dtype
        and st.num_bins * st.interval < 2.0**53
        and st.table.size < 2**31
        and all(np.abs(side.frames).max(initial=0) <= 2.0**53 for side in (query, gallery))
    )


def _side(split, st: SpatialTemporalModel, sessions: bool):
    """What :func:`streid.kernels.joint_scores` reads of one side of the pairs."""
    cams = (np.asarray(split.cams) - 1).astype(np.int32)
    stride = np.int32(st.num_bins)
    times = np.asarray(split.frames, dtype=np.float64)
    zeros = np.zeros(len(cams), np.int32)
    session = np.asarray(split.sessions, dtype=np.int32) if sessions else zeros
    return cams * np.int32(st.num_cameras) * stride, cams * stride, times, session


def joint_block(similarity, query, gallery, st: SpatialTemporalModel, fusion, out=None,
                transpose=False):  # fmt: skip
    """:func:`joint_scores` of every (query, gallery) pair of two blocks, in one compiled
    pass per piece of rows and in threads (:func:`streid.kernels.joint_scores`); the
    similarities are overwritten.

    Args:
        similarity: the cosine similarities, float32 or float64 (see :func:`compiled`):
            (Q, G), or (G, Q) with ``transpose``; rows contiguous.
        query, gallery: the blocks' :class:`streid.interchange.Split` (cams, frames,
            sessions).
        out: where to write the scores, in the similarities' orientation; float64 (the
            default) or float32 (step 6.1's, rounded as ``astype``).

    Returns:
        ``out``.
    """
    fusion = Fusion.of(fusion)
    num_lines, num_cols = similarity.shape
    if out is None:
        out = np.empty((num_lines, num_cols))
    dtype = similarity.dtype.type
    sessions = query.sessions is not None and gallery.sessions is not None
    lines, columns = (gallery, query) if transpose else (query, gallery)
    line_side, col_side = _side(lines, st, sessions), _side(columns, st, sessions)
    denominator = st.st_denominator(fusion.lambda1, fusion.gamma1)
    constants = (dtype(1), dtype(fusion.lambda0))
    table = (denominator, st.num_bins, float(st.interval))

    def piece(r0, r1):  # rows r0..r1: their exp, then their scores
        expo = np.multiply(similarity[r0:r1], -fusion.gamma0, out=similarity[r0:r1])
        np.exp(expo, out=expo)
        rows = tuple(a[r0:r1] for a in line_side)
        kernels.joint_scores(expo, *constants, rows, col_side, not transpose, *table,
                             out[r0:r1])  # fmt: skip

    for_ranges(piece, num_lines, max(1, PIECE // max(num_cols, 1)))
    return out

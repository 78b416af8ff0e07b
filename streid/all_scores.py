"""The joint score of every pair of the [query; gallery] set, from the features.

``S[r, c]`` is the joint score with r in the query role and c in the gallery role, as the
original's ``evaluate2(all_features[r], ...)`` row by row; the same function as step 5
(:func:`streid.fusion.pair_scores`) computes it, ``CHUNK`` columns at a time. Step 6.1
streams these columns into ``all_scores.mat``; ``evaluate_rerank*.py --from_features``
re-ranks them straight away (:class:`FeatureColumns`), without the file.

A matrix product rounds the last float32 bit differently for other shapes, so a score is
always computed within its aligned chunk of ``CHUNK`` columns, as step 6.1 computes it: the
two paths see the same bits.
"""

from __future__ import annotations

import numpy as np

from .fusion import normalize_rows, pair_scores, stream_scores
from .interchange import FeatureSet, Split
from .st_model import SpatialTemporalModel

CHUNK = 128  # columns of S per matrix product


class FeatureColumns:
    """A :class:`streid.matfile.ColumnSource` over the joint scores of ``features``.

    Args:
        features: the query and gallery features (their rows are L2-normalised here; the
            features are not held twice), or one :class:`Split` whose images play both
            roles (step 4 ``--unlabeled``: the training images against each other), whose
            rows are L2-normalised in place.
        st: the smoothed spatial-temporal model (None for ``stream="visual"``).
        fusion: the joint metric's parameters (:class:`streid.fusion.Fusion`, or alpha).
        dtype: of the scores handed out: float32, as step 6.1 writes them.
        device: a torch device to compute the column blocks on
            (:class:`streid.device_scores.DeviceScores`: the same numbers to about 1e-7),
            or None for NumPy on the CPU, in step 6.1's chunks (the same bits).
        stream: the scores handed out (:func:`streid.fusion.pair_scores`): the joint score,
            as step 6.1, or ``"visual"``, the cosine similarity alone.
    """

    def __init__(
        self, features: FeatureSet | Split, st: SpatialTemporalModel | None, fusion,
        dtype=np.float32, device=None, stream: str = "joint",
    ):  # fmt: skip
        if isinstance(features, Split):
            self.everyone = features
        else:
            self.everyone = Split.concatenate([features.query, features.gallery])
        normalize_rows(self.everyone.features, out=self.everyone.features)
        self.st, self.fusion, self.stream = st, fusion, stream
        num = len(self.everyone)
        self.shape, self.dtype = (num, num), np.dtype(dtype)
        self._last: tuple[int, np.ndarray] | None = None
        self._similarity: np.ndarray | None = None
        self._device = None
        if device is not None:
            if stream != "joint":
                raise ValueError("the device computes the joint score only")
            from .device_scores import DeviceScores  # torch only where a device is asked for

            self._device = DeviceScores(self.everyone, st, fusion, device)

    def chunk(self, c0: int) -> np.ndarray:
        """``S[:, c0:c0 + CHUNK].T`` for ``c0`` a multiple of ``CHUNK`` (a new array)."""
        if self._last is None or self._last[0] != c0:
            out = np.empty((min(CHUNK, self.shape[0] - c0), self.shape[0]), dtype=self.dtype)
            self._last = (c0, self._scores(c0, out))
        return self._last[1]

    def _scores(self, c0: int, out: np.ndarray) -> np.ndarray:
        """Write ``S[:, c0:c0 + len(out)].T`` into ``out``, from the one matrix product of
        its chunk."""
        num, width = self.shape[0], len(out)
        if self._similarity is None:  # reused from chunk to chunk
            self._similarity = np.empty(num * CHUNK, self.everyone.features.dtype)
        similarity = self._similarity[: num * width].reshape(num, width)
        gallery = self.everyone[c0 : c0 + width]
        return pair_scores(self.everyone, gallery, self.st, self.fusion, self.stream,
                           similarity=similarity, out=out, transpose=True)  # fmt: skip

    def columns_t(self, j0: int, j1: int) -> np.ndarray:
        """``S[:, j0:j1].T``, (j1 - j0, N), from the aligned chunks that cover it."""
        if self._device is not None:
            return self._device.columns_t(j0, j1, self.dtype)
        out = np.empty((j1 - j0, self.shape[0]), dtype=self.dtype)
        for c0 in range(j0 // CHUNK * CHUNK, j1, CHUNK):
            c1 = min(c0 + CHUNK, self.shape[0])
            if j0 <= c0 and c1 <= j1:  # a whole chunk: written in place
                self._scores(c0, out[c0 - j0 : c1 - j0])
            else:
                lo, hi = max(c0, j0), min(c1, j1)
                out[lo - j0 : hi - j0] = self.chunk(c0)[lo - c0 : hi - c0]
        return out

    def entries(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``S[rows, cols]``, pair by pair.

        Each dot product is summed on its own here, so it may differ from the chunk's
        matrix product in the last float32 bit.
        """
        e = self.everyone
        similarity = np.einsum("ij,ij->i", e.features[rows], e.features[cols])
        if self.stream == "visual":
            return similarity.astype(self.dtype)
        sessions = (None, None) if e.sessions is None else (e.sessions[rows], e.sessions[cols])
        index = self.st.table_index(e.cams[rows], e.frames[rows], e.cams[cols], e.frames[cols],
                                    *sessions)  # fmt: skip
        return stream_scores(self.stream, similarity, index, self.st, self.fusion).astype(
            self.dtype
        )


def all_scores_blocks(features: FeatureSet, st: SpatialTemporalModel, fusion):
    """Step 6.1: the float32 blocks ``S[:, j0:j1].T`` of shape (j1 - j0, N), in column order,
    ``CHUNK`` columns each."""
    columns = FeatureColumns(features, st, fusion)
    del features  # the concatenation is all we need: big PCB features are not held twice
    for c0 in range(0, columns.shape[0], CHUNK):
        yield columns.chunk(c0)

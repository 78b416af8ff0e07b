"""The joint scores of step 6's all-pairs matrix through torch, on a GPU where there is one.

The same arithmetic as :func:`streid.fusion.pair_scores` (Eqn. 9, the session rule and the
table lookup of :meth:`streid.st_model.SpatialTemporalModel.table_index`), written with torch
operations so that the matrix product and the elementwise work run on ``--gpu_ids``'s
device. A GPU's matrix product and ``exp`` may round the last float32 bit differently from
NumPy's, so the scores agree with the CPU's to about 1e-7 and the printed digits are the
same; only the CPU path keeps every bit of step 6.1's ``all_scores.mat``.
"""

from __future__ import annotations

import numpy as np
import torch

from .fusion import Fusion, visual_factor
from .interchange import Split
from .st_model import SpatialTemporalModel


class DeviceScores:
    """``S[:, c0:c1].T`` of the [query; gallery] set ``everyone``, computed on ``device``.

    Args:
        everyone: the concatenated split, its features already L2-normalised.
        st: the smoothed spatial-temporal model.
        fusion: a :class:`streid.fusion.Fusion`, or the original's ``alpha``.
        device: a torch device (``cuda:0``; the CPU works too, for tests).
    """

    def __init__(self, everyone: Split, st: SpatialTemporalModel, fusion, device):
        fusion = Fusion.of(fusion)
        self.fusion, self.st, self.device = fusion, st, torch.device(device)

        def put(values):
            return None if values is None else torch.from_numpy(np.asarray(values)).to(device)

        self.features = put(everyone.features)
        self.cams = put(everyone.cams.astype(np.int64)) - 1
        self.frames = put(everyone.frames)
        self.sessions = put(everyone.sessions)
        self.denominator = put(st.st_denominator(fusion.lambda1, fusion.gamma1))
        interval = float(st.interval)
        self.whole = not self.frames.is_floating_point() and interval.is_integer()
        self.interval = int(interval) if self.whole else interval

    def table_index(self, c0: int, c1: int) -> torch.Tensor:
        """(c1 - c0, N) flat table index of each pair, with r of ``everyone`` in the query
        role and c in c0..c1 in the gallery role, as ``table_index(q[None, :], g[:, None])``."""
        q_cams, q_frames = self.cams[None, :], self.frames[None, :]
        g_cams, g_frames = self.cams[c0:c1, None], self.frames[c0:c1, None]
        q_later = q_frames > g_frames
        later = torch.where(q_later, q_cams, g_cams)
        earlier = torch.where(q_later, g_cams, q_cams)
        gap = (q_frames - g_frames).abs()
        # int(gap / interval), as :func:`streid.st_model.time_gap_bins`.
        # (In float64, as NumPy divides: torch would divide whole numbers in float32.)
        bins = gap // self.interval if self.whole else (gap.double() / self.interval).long()
        st = self.st
        index = (later * st.num_cameras + earlier) * st.num_bins + bins
        inside = bins < st.num_bins
        if self.sessions is not None:
            inside &= self.sessions[None, :] == self.sessions[c0:c1, None]
        return torch.where(inside, index, st.table.size - 1)

    def columns_t(self, c0: int, c1: int, dtype=np.float32) -> np.ndarray:
        """``S[:, c0:c1].T``, (c1 - c0, N), as a NumPy array of ``dtype``."""
        similarity = self.features[c0:c1] @ self.features.T
        visual = visual_factor(similarity, self.fusion, exp=torch.exp)
        scores = visual / self.denominator[self.table_index(c0, c1)]
        return scores.to(_TORCH_DTYPES[np.dtype(dtype)]).cpu().numpy()


_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}

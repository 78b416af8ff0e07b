"""Step 4 without identity labels: pseudo-identities for the spatial-temporal model.

Step 4 counts, for every training identity, the time gaps between the cameras that saw it.
Where the identities are unknown (a new camera network; a visual model trained on another
dataset), ``gen_st_model*.py --unlabeled`` finds pseudo-identities in the training images'
features (``pytorch_result_train.mat``) and counts their gaps instead, with the same
:func:`streid.st_model.camera_pair_histograms`:

1. The k-reciprocal Jaccard distance between every two training images (Zhong et al., CVPR
   2017), from the k-reciprocal encoding V of :mod:`streid.rerank`, kept sparse: only the
   pairs at most ``eps`` apart are stored, so memory stays bounded by the neighbourhoods.
2. DBSCAN (scikit-learn) on those distances: the pseudo-identities, and images left alone.
   As in JVTC (Li and Zhang, ECCV 2020) and SpCL (Ge et al., NeurIPS 2020).
3. The histograms of the pseudo-identities (walks: pseudo-identity and session).
4. Each further round clusters again, by the probability that two images show one person
   given their look and their time gap under the last round's model
   (:mod:`streid.same_person`): JVTC+'s mutual promotion of the two streams, with the
   streams weighed by Bayes' rule, fitted to the last round's pseudo-identities. Pairs whose
   time gap the model finds plausible draw together, as far as their looks allow.

The defaults (:class:`Clustering`) were chosen by measurement on the real names of
Market-1501 and DukeMTMC-reID with simulated features (``benchmarks/label_free_st.py``; the
README's "Without identity labels" has the figures and what else was tried). The labels of
``pytorch_result_train.mat``, where it has them, are only compared with the
pseudo-identities (pairwise precision and recall), never used.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from .all_scores import FeatureColumns
from .bandwidth import choose_sigma
from .datasets import PAPER_SMOOTH
from .errors import UserError, note
from .fusion import Fusion
from .interchange import AUTO, Split
from .rerank import QUERY_BLOCK, jaccard_min_sums, k_reciprocal_weights
from .same_person import chance_histograms, same_person_columns
from .st_model import camera_pair_histograms, walks

TINY = np.finfo(np.float64).tiny  # a stored distance of 0: sparse code drops explicit zeros


@dataclass(frozen=True)
class Clustering:
    """How the pseudo-identities are found (step 4's ``--unlabeled`` flags).

    Attributes:
        rounds: clusterings; each after the first uses the last round's model.
        eps: DBSCAN's neighbourhood radius, in Jaccard distance (0-1).
        min_samples: DBSCAN's images within ``eps`` that make a core image (itself
            included).
        k1, k2: the k-reciprocal encoding's neighbours and query-expansion neighbours.
    """

    rounds: int = 4
    eps: float = 0.6
    min_samples: int = 4
    k1: int = 20
    k2: int = 6

    def check(self, num_images: int) -> None:
        """UserError for settings the method cannot use on ``num_images`` images."""
        if self.rounds < 1:
            raise UserError(f"--rounds must be at least 1, got {self.rounds}")
        if not 0 < self.eps < 1:
            raise UserError(f"--eps must be between 0 and 1 (a Jaccard distance), got {self.eps}")
        if self.min_samples < 1:
            raise UserError(f"--min_samples must be at least 1, got {self.min_samples}")
        if not 1 <= self.k1 < num_images or not 1 <= self.k2 <= self.k1 + 1:
            raise UserError(
                f"--k1 must be between 1 and {num_images - 1} (the training images minus one) "
                f"and --k2 between 1 and k1 + 1, got {self.k1} and {self.k2}"
            )


def jaccard_graph(columns, k1: int, k2: int, eps: float, block: int = QUERY_BLOCK):
    """The k-reciprocal Jaccard distance of every pair of images at most ``eps`` apart.

    ``d(i, j) = 1 - m / (2 - m)`` with ``m = sum_c min(V[i, c], V[j, c])``, the re-ranking's
    Jaccard distance (:mod:`streid.rerank`), for all pairs, ``block`` rows at a time.

    Args:
        columns: the (N, N) similarity, a :class:`streid.matfile.ColumnSource`.

    Returns:
        (N, N) symmetric CSR matrix holding the distances ``<= eps``; those at or below 0
        (an image and itself: 0, or in float32 -2e-7) are stored as the smallest positive
        float, since DBSCAN takes no negative distance and sparse code drops a stored 0.
    """
    v = k_reciprocal_weights(columns, k1, k2)
    num, v_columns = v.shape[0], v.tocsc()
    rows, cols, values = [], [], []
    for r0 in range(0, num, block):
        m = jaccard_min_sums(v[r0 : r0 + block], v_columns, num)
        distance = 1 - m / (2.0 - m)
        r, c = np.nonzero(distance <= eps)
        rows.append(r + r0)
        cols.append(c)
        values.append(np.maximum(distance[r, c], TINY))
    rows, cols, values = (np.concatenate(x) for x in (rows, cols, values))
    return scipy.sparse.csr_matrix((values, (rows, cols)), shape=(num, num))


def cluster(distances, clustering: Clustering) -> np.ndarray:
    """DBSCAN on a sparse distance graph: each image's pseudo-identity, -1 if alone."""
    from sklearn.cluster import DBSCAN  # scikit-learn (slow to import) where it is used

    dbscan = DBSCAN(eps=clustering.eps, min_samples=clustering.min_samples, metric="precomputed")
    return dbscan.fit_predict(distances).astype(np.int64)


def pairwise_precision_recall(pseudo: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Pairwise precision and recall of pseudo-identities against known labels.

    Over the images whose label is known (``labels >= 0``): precision is the share of pairs
    in one pseudo-identity that share a label; recall the share of pairs that share a label
    and are in one pseudo-identity. An image left alone (-1) is a pseudo-identity of its own.
    """
    from sklearn.metrics.cluster import pair_confusion_matrix

    known = labels >= 0
    pseudo, labels = pseudo[known], labels[known]
    alone = pseudo < 0
    pseudo = pseudo.copy()
    pseudo[alone] = pseudo.max(initial=-1) + 1 + np.arange(int(alone.sum()))
    (_, false_join), (false_split, true_join) = pair_confusion_matrix(labels, pseudo)
    precision = true_join / (true_join + false_join) if true_join + false_join else 0.0
    recall = true_join / (true_join + false_split) if true_join + false_split else 0.0
    return float(precision), float(recall)


def clustered(pseudo: np.ndarray, train: Split) -> tuple:
    """(pseudo-identities, cameras, times, sessions) of the images in a pseudo-identity,
    what step 4 counts the gaps of (sessions None where the images have none)."""
    kept = np.flatnonzero(pseudo >= 0)
    sessions = None if train.sessions is None else train.sessions[kept]
    return pseudo[kept], train.cams[kept], train.frames[kept], sessions


def cross_camera_walks(pseudo: np.ndarray, cams: np.ndarray, sessions) -> int:
    """The walks (pseudo-identity, session) seen by two cameras or more: those step 4 counts
    a gap of."""
    kept = pseudo >= 0
    walk = walks(pseudo[kept], None if sessions is None else sessions[kept])
    seen = np.unique(np.stack([walk, cams[kept]]), axis=1)[0]  # one per (walk, camera)
    return int((np.bincount(seen) >= 2).sum()) if seen.size else 0


@dataclass
class Round:
    """One clustering round and what it gave.

    Attributes:
        number: 1-based.
        pseudo: (N,) pseudo-identity of each training image, -1 if it was left alone.
        histograms: (C, C, B) step 4's histograms of the pseudo-identities.
        walks: cross-camera walks counted.
        precision, recall: pairwise, against the known labels; None where there are none.
        seconds: the round's wall time.
    """

    number: int
    pseudo: np.ndarray
    histograms: np.ndarray
    walks: int
    precision: float | None
    recall: float | None
    seconds: float

    def summary(self, rounds: int) -> str:
        """The round's diagnostic line."""
        identities, alone = int(self.pseudo.max()) + 1, int((self.pseudo < 0).sum())
        line = (
            f"round {self.number}/{rounds}: {identities} pseudo-identities, {alone} images "
            f"unclustered, {self.walks} cross-camera walks"
        )
        if self.precision is not None:
            line += (
                f"; against train_label (a diagnostic only): pairwise precision "
                f"{self.precision:.3f}, recall {self.recall:.3f}"
            )
        return f"{line} ({self.seconds:.0f} s)"


def _tally(pseudo: np.ndarray) -> str:
    alone = int((pseudo < 0).sum())
    return f"{int(pseudo.max()) + 1} pseudo-identities, {alone} of {len(pseudo)} images unclustered"


def learn_rounds(
    train: Split,
    num_cameras: int,
    num_bins: int,
    interval: float,
    smooth,
    clustering: Clustering | None = None,
) -> Iterator[Round]:
    """Step 4 ``--unlabeled``: cluster the training images, round by round.

    Args:
        train: the training images (``pytorch_result_train.mat``; their features are
            L2-normalised in place); their labels are only compared with the
            pseudo-identities.
        num_cameras, num_bins, interval: the dataset's histogram settings.
        smooth: the Parzen sigma of each round's model in the next round's odds, in bins,
            or ``"auto"``: chosen from each round's pseudo-identities as step 4 chooses it
            from labelled ones (:func:`streid.bandwidth.choose_sigma`).
        clustering: the method's settings (None: the defaults).

    Yields:
        Each :class:`Round`; the last one's histograms are step 4's output. A round whose
        pseudo-identities are each seen by one camera ends the rounds (with a note): the
        round before it is the last.

    Raises:
        UserError: no pseudo-identity of the first round was seen by two cameras.
    """
    clustering = clustering or Clustering()
    clustering.check(len(train))
    known = train.labels if (train.labels >= 0).any() else None
    columns, chance = FeatureColumns(train, None, Fusion(), stream="visual"), None
    for number in range(1, clustering.rounds + 1):
        start = time.perf_counter()
        graph = jaccard_graph(columns, clustering.k1, clustering.k2, clustering.eps)
        pseudo = cluster(graph, clustering)
        del graph
        count = cross_camera_walks(pseudo, train.cams, train.sessions)
        if count == 0 and number > 1:
            note(f"round {number} found no pseudo-identity seen by two cameras ({_tally(pseudo)})"
                 f"; round {number - 1}'s model is kept")  # fmt: skip
            return
        if count == 0:
            raise UserError(
                f"round 1: no pseudo-identity was seen by two cameras ({_tally(pseudo)}), so "
                f"there is no time gap to learn from: the features may be too weak to tell "
                f"people apart; a larger --eps joins more"
            )
        labels, cams, frames, sessions = clustered(pseudo, train)
        hist = camera_pair_histograms(labels, cams, frames, num_cameras, num_bins, interval,
                                      sessions)  # fmt: skip
        found = (None, None) if known is None else pairwise_precision_recall(pseudo, known)
        yield Round(number, pseudo, hist, count, *found, time.perf_counter() - start)
        if number < clustering.rounds:
            gaps = (labels, cams, frames, num_cameras, num_bins, interval, sessions)
            sigma = smooth if smooth != AUTO else choose_sigma(*gaps)[0] or PAPER_SMOOTH
            if chance is None:
                chance = chance_histograms(train.cams, train.frames, train.sessions,
                                           num_cameras, num_bins, interval)  # fmt: skip
            columns = same_person_columns(train, pseudo, hist, chance, sigma, interval)

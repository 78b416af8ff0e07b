"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), importable as in the original:

    from re_ranking import re_ranking
    final_dist = re_ranking(query_num, all_dist, k1=20, k2=6, lambda_value=0.3)

``all_dist`` is the (Nq + Ng)^2 joint SIMILARITY matrix of the [query; gallery] set; the
result is the (Nq, Ng) re-ranked distance. The implementation, which keeps memory bounded,
is :mod:`streid.rerank`.
"""

from streid.rerank import re_ranking

__all__ = ["re_ranking"]

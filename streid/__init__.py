"""st-reid: the shared library behind the step scripts of this repository.

The top-level scripts (``prepare.py``, ``train_market.py``, ..., ``evaluate_rerank_duke.py``)
keep the original project's command lines; every piece of logic they need lives here once:

- :mod:`streid.datasets`   dataset specs (cameras, bins, interval, name formats), name parsing
- :mod:`streid.artifacts`  ``model/<name>/`` paths, validated .mat reading, atomic writing
- :mod:`streid.st_model`   camera-pair time-gap histograms, Parzen smoothing, joint score
- :mod:`streid.evaluation` CMC and mAP exactly as the original, vectorised
- :mod:`streid.rerank`     k-reciprocal re-ranking in bounded memory
- :mod:`streid.engine`     training loop and feature extraction
"""

__version__ = "1.0.0"

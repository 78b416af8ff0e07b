"""st-reid: the shared library behind the step scripts of this repository.

The top-level scripts (``prepare.py``, ``train_market.py``, ..., ``evaluate_rerank_duke.py``)
keep the original project's command lines; every piece of logic they need lives here once,
one concern per module:

- :mod:`streid.errors`      UserError, notes and warnings (no command-line dependency)
- :mod:`streid.cli`         parsers, the flags the scripts share, the entry-point wrapper
- :mod:`streid.datasets`    dataset specs (cameras, bins, interval, name formats), name parsing
- :mod:`streid.artifacts`   ``model/<name>/``: every file name, validated .mat I/O, atomic writes
- :mod:`streid.options`     ``opts.json``, the options a run was trained with
- :mod:`streid.matfile`     a MAT v5 matrix streamed by blocks of columns
- :mod:`streid.st_model`    camera-pair time-gap histograms, Parzen smoothing, joint score
- :mod:`streid.metrics`     CMC and mAP exactly as the original, vectorised, or over ties
- :mod:`streid.evaluation`  step 5's ranking of score blocks, evaluated with the metrics
- :mod:`streid.ranking`     ``ranking.csv``: the first K matches per query (--save_ranking)
- :mod:`streid.distribution`  step 4: the histograms of identities or pseudo-identities
- :mod:`streid.rerank`      k-reciprocal re-ranking in bounded memory
- :mod:`streid.label_free`  step 4 without identity labels: pseudo-identities, round by round
- :mod:`streid.same_person` the odds that two training images show one person (its rounds)
- :mod:`streid.models`      the original's nets and the architecture registry
- :mod:`streid.weights`     checkpoints and ImageNet files, loaded with the original's tolerances
- :mod:`streid.transforms`  the original's image transforms and RandomErasing
- :mod:`streid.data`, :mod:`streid.device`  images, loaders, devices for steps 2-3
- :mod:`streid.training`, :mod:`streid.extraction`  steps 2 and 3
- :mod:`streid.plots`, :mod:`streid.demo`  pictures and the embedded demo
"""

__version__ = "1.0.0"

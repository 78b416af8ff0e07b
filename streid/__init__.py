"""st-reid: the shared library behind the step scripts of this repository.

The top-level scripts (``prepare.py``, ``train_market.py``, ..., ``evaluate_rerank_duke.py``)
keep the original project's command lines; every piece of logic they need lives here once,
one concern per module.

Modules, one line each (``tests/test_docs.py`` keeps this list complete):

- :mod:`streid.all_scores`      step 6: the joint score of every [query; gallery] pair, by columns
- :mod:`streid.artifacts`       ``model/<name>/``: every file name, validated .mat reading
- :mod:`streid.bandwidth`       ``--smooth auto``: the Parzen width chosen from the training gaps
- :mod:`streid.cli`             parsers, the flags the scripts share, the entry-point wrapper
- :mod:`streid.data`            images, ImageFolder datasets, loaders and batches for steps 2-3
- :mod:`streid.dataset_yaml`    ``dataset.yaml``: a prepared dataset describes itself
- :mod:`streid.datasets`        dataset specs (cameras, bins, interval, name formats), name parsing
- :mod:`streid.demo`            the embedded demo dataset: real names, rendered placeholder people
- :mod:`streid.device`          the device of ``--gpu_ids``, seeding, placing nets and batches
- :mod:`streid.device_scores`   step 6's joint scores through torch, on a GPU
- :mod:`streid.distributed`     step 2 on several GPUs or machines under torchrun (DDP)
- :mod:`streid.distribution`    step 4: the histograms of identities or pseudo-identities
- :mod:`streid.errors`          UserError, notes and warnings (no command-line dependency)
- :mod:`streid.evaluation`      step 5's ranking of score blocks, evaluated with the metrics
- :mod:`streid.extraction`      step 3: features of the query, gallery (and training) images
- :mod:`streid.figure4`         the paper's Figure 4 (and a fifth panel) from a run
- :mod:`streid.files`           atomic writes, owned temporary names, locks, leftovers removed
- :mod:`streid.fusion`          Eqn. 9 and the pair scores behind every ranking
- :mod:`streid.interchange`     ``pytorch_result*.mat``, read and checked
- :mod:`streid.kernels`         the compiled inner loops of steps 5 and 6 (numba), one pass each
- :mod:`streid.label_free`      step 4 without identity labels: pseudo-identities, round by round
- :mod:`streid.manifest`        a CSV manifest of one's own cameras becomes a prepared dataset
- :mod:`streid.manifest_checks` a manifest's checks across rows: time ranges and units, duplicates
- :mod:`streid.matfile`         a MAT v5 matrix written and read by blocks of columns
- :mod:`streid.metrics`         CMC and mAP exactly as the original, vectorised, or over ties
- :mod:`streid.models`          the original's nets and the architecture registry
- :mod:`streid.nearest`         step 6's pass 1: each row's nearest, selected in one pass
- :mod:`streid.optimization`    step 2's optimizer, schedule, state dicts and ``resume.pth``
- :mod:`streid.options`         ``opts.json``, the options a run was trained with
- :mod:`streid.parallel`        threads for the elementwise work between matrix products
- :mod:`streid.plots`           pictures: training curves, time-gap distributions, rank lists
- :mod:`streid.preparation`     step 1: raw datasets become ImageFolder trees
- :mod:`streid.ranking`         ``ranking.csv``: the first K matches per query (--save_ranking)
- :mod:`streid.rerank`          step 6.2: k-reciprocal re-ranking in bounded memory
- :mod:`streid.same_person`     the odds that two training images show one person (its rounds)
- :mod:`streid.st_model`        camera-pair time-gap histograms, Parzen smoothing, lookup
- :mod:`streid.train_log`       ``train_log.csv``: one row per epoch and phase of step 2
- :mod:`streid.training`        step 2: train the appearance model
- :mod:`streid.transforms`      the original's image transforms and RandomErasing
- :mod:`streid.weights`         checkpoints and ImageNet files, loaded with the original's tolerance

The rule of the layout, and how data flows through ``model/<name>/``: docs/architecture.md.
"""

import os

__version__ = "1.0.0"

# NumPy's OpenBLAS keeps its threads spinning for about 0.1 s after each matrix product, on
# the cores that steps 5 and 6 then need for the elementwise work between their products
# (which it slows by up to a third). OpenBLAS reads this when NumPy loads, which the step
# scripts do after this line; a value of the user's own is kept.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

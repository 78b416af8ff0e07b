"""Step 6.2 (any dataset): k-reciprocal re-ranking of the joint scores; CMC and mAP.

    python evaluate_rerank.py --name ft_ResNet50_pcb_msmt17

Reads model/<name>/all_scores.mat (step 6.1) and the labels and cameras of
model/<name>/pytorch_result.mat, and prints the original's line
``top1:%f top5:%f top10:%f mAP:%f``. The same step as evaluate_rerank_market.py and
evaluate_rerank_duke.py.
"""

from streid.cli import entry_point
from streid.steps import evaluate_rerank_main


@entry_point
def main(argv=None):
    return evaluate_rerank_main(__doc__, argv)


if __name__ == "__main__":
    main()

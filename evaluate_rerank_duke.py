"""Step 6.2 (DukeMTMC-reID): k-reciprocal re-ranking of the joint scores; CMC and mAP.

    python evaluate_rerank_duke.py --name ft_ResNet50_pcb_duke_e

Reads model/<name>/all_scores.mat (step 6.1) and the labels and cameras of
model/<name>/pytorch_result.mat, and prints the original's line
``top1:%f top5:%f top10:%f mAP:%f``.
"""

from evaluate_rerank import step_main
from streid.cli import entry_point


@entry_point
def main(argv=None):
    return step_main(__doc__, argv, family="_duke")


if __name__ == "__main__":
    main()

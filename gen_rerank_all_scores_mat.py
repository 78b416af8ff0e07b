"""Step 6.1: the joint score of every pair of the [query; gallery] set, for re-ranking.

    python gen_rerank_all_scores_mat.py --name ft_ResNet50_pcb_market_e

Reads model/<name>/pytorch_result.mat and pytorch_result2.mat, and writes
model/<name>/all_scores.mat (key `all_scores`, (Nq + Ng) x (Nq + Ng), float32), computed
in blocks of columns with step 5's joint score and streamed to disk.
"""

import time

from streid import cli
from streid.all_scores import all_scores_blocks
from streid.artifacts import ALL_SCORES_FILE, DISTRIBUTION_FILE, FEATURES_FILE, Run
from streid.cli import entry_point
from streid.interchange import load_features, load_st_model
from streid.matfile import write_matrix_by_columns

# What to do instead when the file cannot be written.
FROM_FEATURES = ", or re-rank without this file: evaluate_rerank.py --from_features"


@entry_point
def main(argv=None):
    parser = cli.parser(__doc__)
    cli.add_name_argument(parser)
    cli.add_score_arguments(parser)  # --alpha 5, --smooth 50
    args = parser.parse_args(argv)
    with Run(args.name).lock(ALL_SCORES_FILE):
        write_all_scores(args)


def write_all_scores(args) -> None:
    """Step 6.1 on the parsed flags."""
    start = time.perf_counter()
    run = Run(args.name)
    features = load_features(run.existing(FEATURES_FILE))
    st, _ = load_st_model(run.existing(DISTRIBUTION_FILE), args.smooth)
    st.check_query_gallery(features.query.cams, features.gallery.cams)
    num = len(features.query) + len(features.gallery)
    out = run.all_scores
    # Deviation from the original: float32 instead of float64. At Market scale the float64
    # matrix (4.3 GB) exceeds the MAT v5 format's 4 GB limit per variable.
    blocks = all_scores_blocks(features, st, cli.fusion_of(args))
    del features  # the blocks hold what they need; PCB features are large
    write_matrix_by_columns(out, "all_scores", (num, num), "float32", blocks, FROM_FEATURES)
    print(f"wrote {out}: {num} x {num} joint scores in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()

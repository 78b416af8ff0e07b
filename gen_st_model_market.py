"""Step 4 (Market-1501): the spatial-temporal model, camera-pair histograms of time gaps.

    python gen_st_model_market.py --name ft_ResNet50_pcb_market_e --data_dir dataset/market_rename

Reads only the file names under <data_dir>/train_all/ and writes
model/<name>/pytorch_result2.mat (key `distribution`, cameras x cameras x bins).
With --unlabeled, learns from pseudo-identities of model/<name>/pytorch_result_train.mat
(step 3 --train) instead, and never reads an identity label.
"""

from gen_st_model import step_main
from streid.cli import entry_point
from streid.datasets import MARKET


@entry_point
def main(argv=None):
    return step_main(MARKET, __doc__, argv)


if __name__ == "__main__":
    main()

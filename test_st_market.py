r"""Step 3 (Market-1501): extract the appearance features of the query and gallery images.

    python3 test_st_market.py --PCB --gpu_ids 0 --name ft_ResNet50_pcb_market_e \
        --test_dir dataset/market_rename

Writes model/<name>/pytorch_result.mat (query_f, query_label, query_cam, query_frames and the
same for gallery). The net is rebuilt from model/<name>/opts.json when the run has one.
With --train, also writes model/<name>/pytorch_result_train.mat (train_f, train_label,
train_cam, train_frames) from <test_dir>/train_all/, for step 4 --unlabeled.
"""

import test_st
from streid.cli import entry_point
from streid.datasets import MARKET


@entry_point
def main(argv=None):
    test_st.run(argv, MARKET, __doc__)


if __name__ == "__main__":
    main()

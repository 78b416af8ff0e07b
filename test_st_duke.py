r"""Step 3 (DukeMTMC-reID): extract the appearance features of the query and gallery images.

    python3 test_st_duke.py --PCB --gpu_ids 0 --name ft_ResNet50_pcb_duke_e \
        --test_dir dataset/DukeMTMC_prepare

Writes model/<name>/pytorch_result.mat (query_f, query_label, query_cam, query_frames and the
same for gallery). The net is rebuilt from model/<name>/opts.json when the run has one.
With --train, also writes model/<name>/pytorch_result_train.mat (train_f, train_label,
train_cam, train_frames) from <test_dir>/train_all/, for step 4 --unlabeled.
"""

import test_st
from streid.cli import entry_point
from streid.datasets import DUKE


@entry_point
def main(argv=None):
    test_st.run(argv, DUKE, __doc__)


if __name__ == "__main__":
    main()

r"""Step 3 (any dataset): extract the appearance features of the query and gallery images.

    python3 test_st.py --PCB --gpu_ids 0 --name ft_ResNet50_pcb_msmt17 \
        --test_dir dataset/MSMT17_prepare

The dataset is described by <test_dir>/dataset.yaml (written by prepare.py). Writes
model/<name>/pytorch_result.mat (query_f, query_label, query_cam, query_frames, and
query_session for a dataset with sessions; the same for gallery).
With --train, also writes model/<name>/pytorch_result_train.mat (train_f, train_label,
train_cam, train_frames) from <test_dir>/train_all/, for step 4 --unlabeled.
"""

from streid.cli import entry_point
from streid.extraction import test_main


@entry_point
def main(argv=None):
    test_main(None, __doc__, argv)


if __name__ == "__main__":
    main()

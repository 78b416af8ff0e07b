"""Step 4 (any dataset): the spatial-temporal model, camera-pair histograms of time gaps.

    python gen_st_model.py --name ft_ResNet50_pcb_msmt17 --data_dir dataset/MSMT17_prepare

Reads <data_dir>/dataset.yaml (written by prepare.py: cameras, bins, time units per bin,
the file-name pattern, sessions) and only the file names under <data_dir>/train_all/, and
writes model/<name>/pytorch_result2.mat (key `distribution`, cameras x cameras x bins).
With --unlabeled, learns from pseudo-identities of model/<name>/pytorch_result_train.mat
(step 3 --train) instead, and never reads an identity label.
"""

from streid.cli import entry_point
from streid.steps import gen_st_model_main


@entry_point
def main(argv=None):
    return gen_st_model_main(None, __doc__, argv)


if __name__ == "__main__":
    main()

"""Step 4 (DukeMTMC-reID): the spatial-temporal model, camera-pair histograms of time gaps.

    python gen_st_model_duke.py --name ft_ResNet50_pcb_duke_e --data_dir dataset/DukeMTMC_prepare

Reads only the file names under <data_dir>/train_all/ and writes
model/<name>/pytorch_result2.mat (key `distribution`, cameras x cameras x bins).
With --unlabeled, learns from pseudo-identities of model/<name>/pytorch_result_train.mat
(step 3 --train) instead, and never reads an identity label.
"""

from gen_st_model import step_main
from streid.cli import entry_point
from streid.datasets import DUKE


@entry_point
def main(argv=None):
    return step_main(DUKE, __doc__, argv)


if __name__ == "__main__":
    main()

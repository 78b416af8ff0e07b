r"""Step 2 (any dataset): train the appearance model on a folder prepared by prepare.py.

    python3 train.py --PCB --gpu_ids 0 --name ft_ResNet50_pcb_msmt17 --erasing_p 0.5 \
        --train_all --data_dir dataset/MSMT17_prepare

The dataset is described by <data_dir>/dataset.yaml (written by prepare.py); the class count
comes from the data. Writes model/<name>/: net_<epoch>.pth every 10 epochs, net_last.pth,
opts.json, train.jpg. The flags are train_market.py's.
A folder holding a run is refused unless --resume (the same net) or --overwrite.
"""

from streid.cli import RESUME, entry_point
from streid.training import train_main


@entry_point(rerun=RESUME)
def main(argv=None):
    train_main(None, __doc__, argv)


if __name__ == "__main__":
    main()

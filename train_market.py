r"""Step 2 (Market-1501): train the appearance model on the prepared dataset.

    python3 train_market.py --PCB --gpu_ids 0 --name ft_ResNet50_pcb_market_e --erasing_p 0.5 \
        --train_all --data_dir dataset/market_rename

Writes model/<name>/: net_<epoch>.pth every 10 epochs, net_last.pth, opts.json, train.jpg,
train_log.csv (a row per epoch and phase). --config model/<name>/opts.json replays a run's
flags; the flags given override them.
A folder holding a run is refused unless --resume (the same net) or --overwrite.
Small CPU run: --gpu_ids -1 --weights none --epochs 2 --input_size 64 32 --batchsize 8.
"""

import train
from streid.cli import RESUME, entry_point
from streid.datasets import MARKET


@entry_point(rerun=RESUME)
def main(argv=None):
    train.run(argv, MARKET, __doc__)


if __name__ == "__main__":
    main()

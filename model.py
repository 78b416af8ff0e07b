"""The original's model.py, importable as before: ``from model import PCB, PCB_test, ft_net``.

The models live in :mod:`streid.models`; see there.
"""

from streid.models import (  # noqa: F401 (re-exported)
    PCB,
    ClassBlock,
    PCB_test,
    ft_net,
    ft_net_dense,
    ft_net_middle,
    weights_init_classifier,
    weights_init_kaiming,
)

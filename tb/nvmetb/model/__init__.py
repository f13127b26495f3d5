"""Reference model of nvmecore: registers, queue engine and admin command set."""

from .commands import Status
from .controller import (
    CYCLES_PER_TIME_UNIT,
    ControllerModel,
    DmaRead,
    DmaWrite,
    DoorbellWrite,
    split_access,
)
from .queues import CompletionEntry

__all__ = ["ControllerModel", "DmaRead", "DmaWrite", "DoorbellWrite", "split_access",
           "CompletionEntry", "Status", "CYCLES_PER_TIME_UNIT"]

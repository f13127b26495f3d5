"""Reference model of nvmecore: registers, queue engine, admin command set and the NVM
command set on its namespace."""

from .commands import Status
from .controller import (
    CYCLES_PER_TIME_UNIT,
    ControllerModel,
    DmaRead,
    DmaWrite,
    DoorbellWrite,
    split_access,
)
from .io import MDTS_BYTES, HealthCounters, IoDma
from .namespace import NamespaceStore, RangeSet
from .queues import CompletionEntry

__all__ = ["ControllerModel", "DmaRead", "DmaWrite", "DoorbellWrite", "split_access",
           "CompletionEntry", "Status", "CYCLES_PER_TIME_UNIT", "IoDma", "HealthCounters",
           "NamespaceStore", "RangeSet", "MDTS_BYTES"]

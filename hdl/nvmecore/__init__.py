"""nvmecore: an NVMe controller IP core for FPGAs, written in Amaranth."""

from .config import ConfigError, CoreConfig
from .core import NvmeCore

__all__ = ["CoreConfig", "ConfigError", "NvmeCore"]
__version__ = "0.1.0"

"""NVMe host driver (Linux-like bring-up, queues, admin and NVM I/O commands) over a
transport."""

from .driver import (
    CompletionQueue,
    NvmeHost,
    SubmissionQueue,
    build_sqe,
    decode_cqe,
)
from .io import MAX_BLOCKS, READ_FILL, IoCommand, IoStats, pattern
from .prp import PrpBuffers, PrpLayout, build_prps
from .shadow import NamespaceShadow
from .status import (
    CommandError,
    ControllerTimeout,
    DataMismatch,
    NvmeError,
    ProtocolError,
    QueueFull,
    Status,
)
from .transport import HostMemoryTransport, Transport

__all__ = [
    "Transport", "HostMemoryTransport", "NvmeHost", "Status", "build_sqe", "decode_cqe",
    "SubmissionQueue", "CompletionQueue", "NvmeError", "CommandError", "ControllerTimeout",
    "ProtocolError", "QueueFull", "DataMismatch",
    "IoCommand", "IoStats", "READ_FILL", "MAX_BLOCKS", "pattern", "PrpLayout", "PrpBuffers",
    "build_prps", "NamespaceShadow",
]

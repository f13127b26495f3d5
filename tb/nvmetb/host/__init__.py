"""NVMe host driver (Linux-like bring-up, queues, admin commands) over a transport."""

from .driver import (
    CommandError,
    CompletionQueue,
    ControllerTimeout,
    NvmeError,
    NvmeHost,
    ProtocolError,
    QueueFull,
    Status,
    SubmissionQueue,
    build_sqe,
    decode_cqe,
)
from .transport import HostMemoryTransport, Transport

__all__ = [
    "Transport", "HostMemoryTransport", "NvmeHost", "Status", "build_sqe", "decode_cqe",
    "SubmissionQueue", "CompletionQueue", "NvmeError", "CommandError", "ControllerTimeout",
    "ProtocolError", "QueueFull",
]

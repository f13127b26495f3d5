"""Vendor-neutral interfaces between NvmeCore and a PCIe adapter (DESIGN.md §2).

Signatures are written from the point of view of the side that *initiates*: a register
bus is ``In(RegisterBus())`` on the core (the adapter issues requests), a DMA write port is
``Out(DmaWrite(width))`` on the core.
"""

from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import DmaReadRequest, DmaWriteRequest, RegRequest

__all__ = ["RegisterBus", "RegisterPort", "DmaWrite", "DmaWriteBeat", "DmaRead", "DmaReadBeat",
           "PcieConfig", "strobe"]


class RegisterBus(wiring.Signature):
    """BAR0 accesses: ``req`` carries :class:`RegRequest`, ``resp`` the read data (64 bits),
    one response per read, in request order."""

    def __init__(self):
        super().__init__({
            "req":  Out(stream.Signature(RegRequest)),
            "resp": In(stream.Signature(64)),
        })


class DmaWriteBeat(data.StructLayout):
    def __init__(self, width):
        super().__init__({"data": width, "last": 1})


class DmaWrite(wiring.Signature):
    """Posted DMA writes, issued in order: a :class:`DmaWriteRequest` on ``cmd``, then
    ⌈length / (width/8)⌉ beats on ``data``, the last one with ``last`` set."""

    def __init__(self, width):
        self.width = width
        super().__init__({
            "cmd":  Out(stream.Signature(DmaWriteRequest)),
            "data": Out(stream.Signature(DmaWriteBeat(width))),
        })


class DmaReadBeat(data.StructLayout):
    def __init__(self, width):
        super().__init__({"data": width, "tag": 8, "last": 1, "error": 1})


class DmaRead(wiring.Signature):
    """DMA reads: a :class:`DmaReadRequest` on ``req``; its data returns on ``data`` in
    request order, ⌈length / (width/8)⌉ beats, the last with ``last`` set. ``error`` on a
    beat (unsupported request, completer abort, poisoned data or a time-out) means the
    data of this request is not to be trusted; the request still ends with ``last``."""

    def __init__(self, width):
        self.width = width
        super().__init__({
            "req":  Out(stream.Signature(DmaReadRequest)),
            "data": In(stream.Signature(DmaReadBeat(width))),
        })


class PcieConfig(wiring.Signature):
    """Configuration-space state the hard IP reports (DESIGN.md §2).

    Sizes are the PCIe encodings: 0 = 128 B, 1 = 256 B, ... 5 = 4096 B
    [PCIe 4.0 §7.5.3.4]. ``flr`` is high while a function-level reset is in progress.
    """

    def __init__(self):
        super().__init__({
            "bus_master_enable":     Out(1),
            "msix_enable":           Out(1),
            "msix_function_mask":    Out(1),
            "max_payload_size":      Out(3),
            "max_read_request_size": Out(3),
            "flr":                   Out(1),
        })


class RegisterPort(wiring.Signature):
    """Core-internal port from the BAR0 decoder to one register block.

    ``w_stb`` / ``r_stb`` pulse for one cycle with ``addr`` (BAR0 byte offset of the
    QWORD), ``be`` and ``wdata``; ``rdata`` is valid the cycle after ``r_stb`` and must
    hold until the next strobe. The decoder strobes only while ``busy`` is low.
    """

    def __init__(self):
        super().__init__({
            "addr":  Out(14),
            "be":    Out(8),
            "wdata": Out(64),
            "w_stb": Out(1),
            "r_stb": Out(1),
            "rdata": In(64),
            "busy":  In(1),
        })


def strobe(layout):
    """A layout with a ``valid`` bit in front: a one-cycle event without handshake."""
    fields = {name: field.shape for name, field in data.Layout.cast(layout)}
    return data.StructLayout({"valid": 1, **fields})

"""The backend interface: how the core's NVM I/O path reaches the namespace's storage.

The core is the initiator. It sends :class:`BackendCommand` s on ``cmd``; the data of a
WRITE follows on ``wdata``, the data of a READ comes back on ``rdata``, and every command
ends with one :class:`BackendDone` on ``done``. docs/backend.md is the contract a user's
backend (flash, DRAM, a computational-storage engine) keeps; in short:

- ``addr`` and ``length`` are bytes in the namespace, both multiples of
  :data:`~nvmecore.nvm_layouts.SECTOR_BYTES` (512), never past its end; ``length`` ≥ 512.
- WRITE: exactly ``length / (W / 8)`` beats follow on ``wdata``, in command order, the
  last with ``last``. READ: the backend returns exactly ``length / (W / 8)`` beats on
  ``rdata``, in the order it accepted the READs, the last with ``last``. Byte ``i`` of a
  beat is bits ``8i + 7 .. 8i``; beat ``k`` of a command holds its bytes
  ``k·W/8 .. (k+1)·W/8 − 1``.
- ZERO: the range reads back as zeroes afterwards (Write Zeroes, deallocation, Format
  NVM). FLUSH: every WRITE and ZERO completed before it is durable.
- ``done`` carries the command's ``tag`` and whether it failed; it comes after the
  command's last data beat (either direction), in any order across commands. A READ that
  fails still delivers all its beats.
- Commands in flight never overlap in a way whose outcome depends on the order the
  backend runs them: the NVMe host owns that (NVMe keeps no order between commands).
- ``abort`` high (a function-level reset of the core) means: forget every command in
  flight — no more ``rdata`` or ``done`` for them, no more ``wdata`` expected — and keep
  the namespace. New commands come only after ``abort`` is low again.

All streams follow ``amaranth.lib.stream``'s rules.
"""

from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BackendOp", "BackendStatus", "BackendCommand", "BackendBeat", "BackendDone",
           "BackendPort", "TAG_WIDTH", "split_by_direction"]

#: Width of a command tag: the core numbers its commands in flight 0 .. io_slots − 1.
TAG_WIDTH = 8


class BackendOp(enum.Enum, shape=2):
    READ  = 0
    WRITE = 1
    ZERO  = 2
    FLUSH = 3


class BackendStatus(enum.Enum, shape=1):
    OK    = 0
    ERROR = 1       # the media failed: Unrecovered Read Error (READ) or Write Fault


class BackendCommand(data.StructLayout):
    """One backend command. ``addr`` and ``length`` are in bytes; their widths follow the
    namespace size (``CoreConfig.namespace_addr_width``)."""

    def __init__(self, addr_width):
        super().__init__({
            "op":     BackendOp,
            "tag":    TAG_WIDTH,
            "addr":   addr_width,
            "length": addr_width + 1,
        })


class BackendBeat(data.StructLayout):
    def __init__(self, width):
        super().__init__({"data": width, "last": 1})


class BackendDone(data.Struct):
    tag:    TAG_WIDTH
    status: BackendStatus


class BackendPort(wiring.Signature):
    """The backend interface seen from the core (the initiator)."""

    def __init__(self, data_width, addr_width):
        self.data_width = data_width
        self.addr_width = addr_width
        super().__init__({
            "cmd":   Out(stream.Signature(BackendCommand(addr_width))),
            "wdata": Out(stream.Signature(BackendBeat(data_width))),
            "rdata": In(stream.Signature(BackendBeat(data_width))),
            "done":  In(stream.Signature(BackendDone)),
            "abort": Out(1),
        })

    def __eq__(self, other):
        return (isinstance(other, BackendPort) and other.data_width == self.data_width
                and other.addr_width == self.addr_width)

    def __repr__(self):
        return f"BackendPort({self.data_width}, {self.addr_width})"


def split_by_direction(m, cmd, reads, writes, hold):
    """Backend-side helper: the commands of stream ``cmd`` into FIFO ``reads`` (READs) and
    FIFO ``writes`` (the rest, whose data comes in on ``wdata``), none taken while ``hold``
    (an abort or its drain)."""
    is_read = cmd.payload.op == BackendOp.READ
    m.d.comb += [
        reads.w_data.eq(cmd.payload),
        writes.w_data.eq(cmd.payload),
        reads.w_en.eq(cmd.valid & is_read & ~hold),
        writes.w_en.eq(cmd.valid & ~is_read & ~hold),
        cmd.ready.eq(~hold & (is_read & reads.w_rdy | ~is_read & writes.w_rdy)),
    ]

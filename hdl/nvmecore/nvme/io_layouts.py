"""Structures shared by the blocks of the NVM I/O engine (``io_engine``).

A command that needs work takes a *slot* (``tag``, 0 .. io_slots − 1) from fetch to
completion. Its :class:`SlotContext` is what its completion needs; every block that does
a part of it reports the part done with an :class:`IoEvent` to ``io_slots``, which
completes the command when no part is left.
"""

from amaranth import signed
from amaranth.lib import data, enum

from ..backend.interface import TAG_WIDTH
from ..config import CoreConfig
from ..layouts import GenericStatus, MediaStatus, StatusCodeType
from .prp_walker import MAX_TRANSFER_BYTES

__all__ = ["CmdKind", "IoStatus", "SlotContext", "IoEvent", "status_const", "OK",
           "FORMAT_TAG"]

#: The tag of the one backend command that is not an I/O command's: Format NVM's ZERO.
FORMAT_TAG = (1 << TAG_WIDTH) - 1


class CmdKind(enum.Enum, shape=3):
    """What a command in a slot is (for its status on a media error and for SMART)."""
    READ    = 0
    WRITE   = 1
    COMPARE = 2
    FLUSH   = 3
    ZEROES  = 4
    DSM     = 5


class IoStatus(data.Struct):
    """A completion's status: Status Code, Status Code Type, Do Not Retry."""
    sc:  8
    sct: StatusCodeType
    dnr: 1


def status_const(code, dnr=False):
    """The :class:`IoStatus` value of a :class:`GenericStatus` / :class:`MediaStatus` /
    ``CommandSpecificStatus`` member."""
    sct = {GenericStatus: StatusCodeType.GENERIC,
           MediaStatus: StatusCodeType.MEDIA}.get(type(code), StatusCodeType.COMMAND_SPECIFIC)
    return IoStatus.const({"sc": code.value, "sct": sct, "dnr": int(dnr)})


OK = status_const(GenericStatus.SUCCESS)


class SlotContext(data.StructLayout):
    def __init__(self, config: CoreConfig):
        qw = config.qid_width
        super().__init__({
            "sqid":  qw,
            "cqid":  qw,
            "cid":   16,
            "nsid":  32,
            "slba":  64,                                  # for the error log
            "kind":  CmdKind,
            "bytes": range(MAX_TRANSFER_BYTES + 1),       # data moved, for SMART
        })


class IoEvent(data.Struct):
    """A part of command ``tag`` is done: ``delta`` is added to its count of parts still
    to come (negative: parts done; positive: parts started, e.g. a Dataset Management
    range sent to the backend). ``status`` (when not success) and ``media`` (a backend
    error) are remembered for its completion; the first error status wins."""
    tag:    TAG_WIDTH
    status: IoStatus
    media:  1
    delta:  signed(10)

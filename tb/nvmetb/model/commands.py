"""The vocabulary of admin commands: command Dword layouts, Feature and CNS identifiers,
and completion status.

``nvmecore.layouts`` has the SQE, the CQE, opcodes and status codes; the fields inside the
command Dwords of each admin command, and the feature values, are defined here until the
gateware's admin engine needs them too — then they move to ``nvmecore.layouts`` and this
module imports them from there. Fields pack from bit 0 up, as in the specification's
tables; ``fields(Layout, value)`` decodes a Dword.
"""

from dataclasses import dataclass

from amaranth.lib import data, enum

from nvmecore.layouts import (
    CommandSpecificStatus,
    CqeStatus,
    GenericStatus,
    StatusCodeType,
    field_mask,
    public_fields,
)

__all__ = [
    "fields", "encode", "writable_bits",
    "QueueIdSize", "CreateCqDw11", "CreateSqDw11", "IdentifyDw10", "Cns",
    "GetLogPageDw10", "GetLogPageDw11", "FeatureDw10", "FeatureId", "AbortDw10",
    "Arbitration", "PowerManagement", "TemperatureThreshold", "ThresholdType",
    "ErrorRecovery", "NumberOfQueues", "InterruptCoalescing", "InterruptVectorConfig",
    "WriteAtomicityNormal", "AsyncEventConfig", "AsyncEventInfoSmart",
    "Status", "SUCCESS", "Refused",
]


def fields(layout, value):
    """``value`` (an integer) seen through ``layout``."""
    return data.Layout.cast(layout).from_bits(value)


def encode(layout, values):
    return data.Layout.cast(layout).const(values).as_bits()


def writable_bits(layout):
    """The bits of ``layout`` that are not reserved."""
    return field_mask(layout, *public_fields(layout))


# -- Queue management [NVMe 1.4 §5.3 - §5.6] ----------------------------------------------

class QueueIdSize(data.Struct):
    """CDW10 of Create I/O CQ / SQ and Delete I/O CQ / SQ (QSIZE reserved for Delete)."""
    qid:   16
    qsize: 16     # entries, 0's based


class CreateCqDw11(data.Struct):
    """CDW11 of Create I/O Completion Queue [NVMe 1.4 §5.3]."""
    pc:    1      # physically contiguous
    ien:   1      # interrupts enabled
    _rsvd: 14
    iv:    16     # interrupt vector


class CreateSqDw11(data.Struct):
    """CDW11 of Create I/O Submission Queue [NVMe 1.4 §5.4]."""
    pc:    1
    qprio: 2      # queue priority (weighted round robin)
    _rsvd: 13
    cqid:  16


# -- Identify [NVMe 1.4 §5.15] --------------------------------------------------------------

class IdentifyDw10(data.Struct):
    cns:   8
    _rsvd: 8
    cntid: 16


class Cns(enum.Enum, shape=8):
    """Controller or Namespace Structure [NVMe 1.4 Figure 244]."""
    NAMESPACE        = 0x00
    CONTROLLER       = 0x01
    ACTIVE_NSID_LIST = 0x02
    NS_DESCRIPTORS   = 0x03


# -- Get Log Page [NVMe 1.4 §5.14] -------------------------------------------------------

class GetLogPageDw10(data.Struct):
    lid:   8
    lsp:   4
    _rsvd: 3
    rae:   1      # retain asynchronous event
    numdl: 16     # number of Dwords, lower half, 0's based


class GetLogPageDw11(data.Struct):
    numdu: 16
    lsi:   16


# -- Features [NVMe 1.4 §5.13, §5.21] ----------------------------------------------------

class FeatureDw10(data.Struct):
    """CDW10 of Get Features (SEL) and Set Features (SV)."""
    fid:   8
    sel:   3      # Get Features: 000b = current
    _rsvd: 20
    sv:    1      # Set Features: save


class FeatureId(enum.Enum, shape=8):
    """Feature Identifiers [NVMe 1.4 Figure 271]."""
    ARBITRATION            = 0x01
    POWER_MANAGEMENT       = 0x02
    TEMPERATURE_THRESHOLD  = 0x04
    ERROR_RECOVERY         = 0x05
    VOLATILE_WRITE_CACHE   = 0x06
    NUMBER_OF_QUEUES       = 0x07
    INTERRUPT_COALESCING   = 0x08
    INTERRUPT_VECTOR_CONFIG = 0x09
    WRITE_ATOMICITY_NORMAL = 0x0A
    ASYNC_EVENT_CONFIG     = 0x0B


class Arbitration(data.Struct):
    """Feature 01h [NVMe 1.4 §5.21.1.1]."""
    ab:    3      # arbitration burst, 2^AB commands; 111b = no limit
    _rsvd: 5
    lpw:   8      # low / medium / high priority weights, 0's based
    mpw:   8
    hpw:   8


class PowerManagement(data.Struct):
    """Feature 02h [NVMe 1.4 §5.21.1.2]."""
    ps:    5      # power state
    wh:    3      # workload hint
    _rsvd: 24


class ThresholdType(enum.Enum, shape=2):
    OVER  = 0b00
    UNDER = 0b01


class TemperatureThreshold(data.Struct):
    """Feature 04h [NVMe 1.4 §5.21.1.4]."""
    tmpth:  16    # kelvin
    tmpsel: 4     # 0 = composite temperature
    thsel:  2     # ThresholdType; 10b and 11b are reserved
    _rsvd:  10


class ErrorRecovery(data.Struct):
    """Feature 05h [NVMe 1.4 §5.21.1.5]."""
    tler:  16     # time limited error recovery, 100 ms units
    dulbe: 1      # deallocated or unwritten logical block error enable
    _rsvd: 15


class NumberOfQueues(data.Struct):
    """Feature 07h, CDW11 (requested) and completion DW0 (allocated), both 0's based
    [NVMe 1.4 §5.21.1.7]."""
    nsq: 16
    ncq: 16


class InterruptCoalescing(data.Struct):
    """Feature 08h [NVMe 1.4 §5.21.1.8]."""
    thr:   8      # aggregation threshold, 0's based completions
    time:  8      # aggregation time, 100 µs units
    _rsvd: 16


class InterruptVectorConfig(data.Struct):
    """Feature 09h [NVMe 1.4 §5.21.1.9]."""
    iv:    16
    cd:    1      # coalescing disable
    _rsvd: 15


class WriteAtomicityNormal(data.Struct):
    """Feature 0Ah [NVMe 1.4 §5.21.1.10]."""
    dn:    1
    _rsvd: 31


class AsyncEventConfig(data.Struct):
    """Feature 0Bh [NVMe 1.4 §5.21.1.11]; the notices (bits 8 and up) are not supported
    and ignored (docs/admin-commands.md)."""
    smart: 8      # one bit per SMART / Health critical warning (bit 1: temperature)
    _rsvd: 24


class AsyncEventInfoSmart(enum.Enum, shape=8):
    """Asynchronous Event Information for the SMART / Health type [NVMe 1.4 Figure 148]."""
    NVM_SUBSYSTEM_RELIABILITY = 0x00
    TEMPERATURE_THRESHOLD     = 0x01
    SPARE_BELOW_THRESHOLD     = 0x02


# -- Abort [NVMe 1.4 §5.1] -----------------------------------------------------------------

class AbortDw10(data.Struct):
    sqid: 16
    cid:  16


# -- Completion status [NVMe 1.4 §4.6.1] -------------------------------------------------

@dataclass(frozen=True)
class Status:
    """A completion's status: Status Code Type, Status Code, Do Not Retry."""
    sct: StatusCodeType
    sc: int
    dnr: bool = False

    @classmethod
    def of(cls, code, dnr=False):
        """The status for a :class:`GenericStatus` or :class:`CommandSpecificStatus`."""
        sct = (StatusCodeType.GENERIC if isinstance(code, GenericStatus)
               else StatusCodeType.COMMAND_SPECIFIC)
        assert isinstance(code, (GenericStatus, CommandSpecificStatus))
        return cls(sct, code.value, dnr)

    @property
    def ok(self):
        return self.sct == StatusCodeType.GENERIC and self.sc == GenericStatus.SUCCESS.value

    def field(self, phase=0):
        """The 16-bit Status Field with the phase tag (CQE DW3 bits 31:16)."""
        return encode(CqeStatus, {"p": phase, "sc": self.sc, "sct": self.sct,
                                  "dnr": int(self.dnr)})

    def __str__(self):
        return f"{self.sct.value}/{self.sc:02X}{'+DNR' if self.dnr else ''}"


SUCCESS = Status.of(GenericStatus.SUCCESS)


class Refused(Exception):
    """A check failed: the command completes with ``status`` (and does nothing else)."""

    def __init__(self, code, dnr=False):
        super().__init__(code)
        self.status = Status.of(code, dnr)

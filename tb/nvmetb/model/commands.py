"""The vocabulary of admin commands: command Dword layouts, Feature and CNS identifiers,
and completion status.

``nvmecore.layouts`` has the SQE, the CQE, opcodes and status codes;
``nvmecore.admin_layouts`` has the fields inside the command Dwords of each admin command,
the CNS and Feature identifiers and the feature values, shared with the gateware's admin
engine and the host driver. They are re-exported here for the model's modules. Fields pack
from bit 0 up, as in the specification's tables; ``fields(Layout, value)`` decodes a Dword.
"""

from dataclasses import dataclass

from amaranth.lib import data

from nvmecore.admin_layouts import (
    AbortDw10,
    Arbitration,
    AsyncEventConfig,
    AsyncEventInfoSmart,
    Cns,
    CreateCqDw11,
    CreateSqDw11,
    ErrorRecovery,
    FeatureDw10,
    FeatureId,
    GetLogPageDw10,
    GetLogPageDw11,
    IdentifyDw10,
    InterruptCoalescing,
    InterruptVectorConfig,
    NumberOfQueues,
    PowerManagement,
    QueueIdSize,
    TemperatureThreshold,
    ThresholdType,
    WriteAtomicityNormal,
)
from nvmecore.layouts import (
    CommandSpecificStatus,
    CqeStatus,
    GenericStatus,
    MediaStatus,
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
    "Status", "SUCCESS", "Refused", "Done",
]


def fields(layout, value):
    """``value`` (an integer) seen through ``layout``."""
    return data.Layout.cast(layout).from_bits(value)


def encode(layout, values):
    return data.Layout.cast(layout).const(values).as_bits()


def writable_bits(layout):
    """The bits of ``layout`` that are not reserved."""
    return field_mask(layout, *public_fields(layout))


# -- Completion status [NVMe 1.4 §4.6.1] -------------------------------------------------

_STATUS_CODE_TYPE = {
    GenericStatus:         StatusCodeType.GENERIC,
    CommandSpecificStatus: StatusCodeType.COMMAND_SPECIFIC,
    MediaStatus:           StatusCodeType.MEDIA,
}


@dataclass(frozen=True)
class Status:
    """A completion's status: Status Code Type, Status Code, Do Not Retry."""
    sct: StatusCodeType
    sc: int
    dnr: bool = False

    @classmethod
    def of(cls, code, dnr=False):
        """The status for a :class:`GenericStatus`, :class:`CommandSpecificStatus` or
        :class:`MediaStatus` value."""
        return cls(_STATUS_CODE_TYPE[type(code)], code.value, dnr)

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


@dataclass(frozen=True)
class Done:
    """A command completes now: DW0, its status, and for the Error Information log the
    LBA it concerned (I/O commands with a starting LBA; 0 otherwise)."""
    dw0: int = 0
    status: Status = SUCCESS
    lba: int = 0

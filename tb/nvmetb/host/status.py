"""Completion status and the driver's errors, shared by the admin driver
(:mod:`.driver`) and the NVM I/O commands (:mod:`.io`)."""

from dataclasses import dataclass

from amaranth.lib import data

from nvmecore.layouts import (
    CommandSpecificStatus,
    CqeStatus,
    GenericStatus,
    MediaStatus,
    StatusCodeType,
)

__all__ = ["Status", "NvmeError", "CommandError", "ControllerTimeout", "ProtocolError",
           "QueueFull", "DataMismatch"]


def _field(shape, name, value):
    f = data.Layout.cast(shape)[name]
    return value >> f.offset & ((1 << f.width) - 1)


_SCT = {
    GenericStatus: StatusCodeType.GENERIC,
    CommandSpecificStatus: StatusCodeType.COMMAND_SPECIFIC,
    MediaStatus: StatusCodeType.MEDIA,
}


@dataclass(frozen=True)
class Status:
    """A CQE's status field as integers (safe for reserved SCT values, which the
    ``StatusCodeType`` enum cannot hold)."""
    sct: int
    sc: int
    dnr: bool = False
    more: bool = False
    crd: int = 0

    @classmethod
    def of(cls, cqe):
        bits = cqe.status.as_bits()
        return cls(_field(CqeStatus, "sct", bits), _field(CqeStatus, "sc", bits),
                   bool(_field(CqeStatus, "dnr", bits)), bool(_field(CqeStatus, "m", bits)),
                   _field(CqeStatus, "crd", bits))

    @property
    def ok(self):
        return self.sct == StatusCodeType.GENERIC.value and self.sc == GenericStatus.SUCCESS.value

    def is_(self, code, dnr=None):
        """Whether this is ``code`` (a ``GenericStatus``, ``CommandSpecificStatus`` or
        ``MediaStatus`` member), and DNR matches when ``dnr`` is given."""
        sct = _SCT[type(code)]
        return (self.sct == sct.value and self.sc == code.value
                and (dnr is None or self.dnr == dnr))

    def __str__(self):
        return f"{self.sct:X}/{self.sc:02X}" + ("+DNR" if self.dnr else "")


class NvmeError(Exception):
    pass


class CommandError(NvmeError):
    """A command completed with an unexpected status."""

    def __init__(self, what, cqe):
        self.cqe = cqe
        self.status = Status.of(cqe)
        super().__init__(f"{what}: status {self.status}")


class ControllerTimeout(NvmeError, TimeoutError):
    pass


class ProtocolError(NvmeError):
    """The controller broke the queue protocol (unknown CID, bad SQHD, ...)."""


class QueueFull(NvmeError):
    pass


class DataMismatch(NvmeError):
    """Data read back (or a Compare's outcome) disagrees with what the host knows the
    namespace holds."""

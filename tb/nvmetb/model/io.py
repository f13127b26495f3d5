"""The NVM command set on I/O queues [NVMe 1.4 chapter 6], exactly as docs/io-commands.md
fixes it: command gating, then each command's checks in the listed order, the first that
applies giving the status; then the PRPs, the data transfer and the backend command.

The model is transaction level: a fetched I/O command runs to its completion before the
next one is looked at, so nothing is ever in flight beside it. What the RTL may do
differently because of timing (completion order within a CQ, an Abort that finds its
command not yet started, 0/84 while a Format NVM runs) is listed in the contract's last
section; the benches check those as invariants.

Data moves through the controller's host-memory interface (``_dma_read`` /
``_dma_write``, so injected memory faults hit it) and the namespace through its
:class:`~nvmetb.model.namespace.NamespaceStore`. Every I/O DMA access is recorded in
``ControllerModel.io_dma`` as an :class:`IoDma`, in order.
"""

from dataclasses import dataclass

from nvmecore.layouts import GenericStatus, MediaStatus, NvmOpcode
from nvmecore.nvm_layouts import (
    BROADCAST_NSID,
    DSM_RANGE_BYTES,
    PAGE_BYTES,
    SECTOR_BYTES,
    DsmDw10,
    DsmDw11,
    DsmRange,
    ReadWriteDw12,
    WriteZeroesDw12,
)
from nvmecore.nvme.identify import MDTS, NN

from .commands import Done, Refused, fields
from .prp import prp_walk

__all__ = ["MDTS_BYTES", "IoDma", "HealthCounters", "NvmCommandSet", "slba_of"]

#: The most a Read, Write or Compare may move: 2^MDTS pages of CAP.MPSMIN (4 KiB).
MDTS_BYTES = PAGE_BYTES << MDTS
#: SMART / Health counts data in thousands of 512-byte units [NVMe 1.4 Figure 194].
DATA_UNIT_SECTORS = 1000

#: Commands that name a starting LBA in CDW11:CDW10: the Error Information log reports it.
_SLBA_OPCODES = {NvmOpcode.READ.value, NvmOpcode.WRITE.value, NvmOpcode.COMPARE.value,
                 NvmOpcode.WRITE_ZEROES.value}


def slba_of(sqe):
    """SLBA, CDW11:CDW10, of Read, Write, Compare and Write Zeroes."""
    return sqe.cdw11 << 32 | sqe.cdw10


@dataclass(frozen=True)
class IoDma:
    """One host-memory access of an I/O command. ``kind`` is :attr:`PRP_LIST` (the
    entries needed from one PRP list page), :attr:`HOST_READ` (data from the host: a
    Write's or Compare's data, Dataset Management's ranges) or :attr:`HOST_WRITE` (a
    Read's data to the host). Data moves one PRP piece (never across a page) per
    access; the RTL splits further by max read request / payload size."""
    kind: str
    addr: int
    length: int

    PRP_LIST = "prp_list"
    HOST_READ = "host_read"
    HOST_WRITE = "host_write"


class HealthCounters:
    """The SMART / Health counters the I/O path moves (docs/io-commands.md "SMART /
    Health"): successful Reads and matched Compares count as host read commands,
    successful Writes as host write commands, with their 512-byte units; Write Zeroes,
    Dataset Management, Flush and failed commands are not counted. The gateware keeps
    them until a function-level reset: they survive a controller reset."""

    def __init__(self):
        self.host_read_commands = 0
        self.host_write_commands = 0
        self.sectors_read = 0           # 512-byte units
        self.sectors_written = 0

    def read(self, nbytes):
        self.host_read_commands += 1
        self.sectors_read += nbytes // SECTOR_BYTES

    def write(self, nbytes):
        self.host_write_commands += 1
        self.sectors_written += nbytes // SECTOR_BYTES

    @staticmethod
    def data_units(sectors):
        """Thousands of 512-byte units, rounded up [NVMe 1.4 Figure 194]."""
        return -(-sectors // DATA_UNIT_SECTORS)

    def smart_fields(self):
        """Keyword arguments of :func:`nvmecore.nvme.identify.smart_log`."""
        return {
            "data_units_read":     self.data_units(self.sectors_read),
            "data_units_written":  self.data_units(self.sectors_written),
            "host_read_commands":  self.host_read_commands,
            "host_write_commands": self.host_write_commands,
        }


class NvmCommandSet:
    def __init__(self, ctrl):
        self.ctrl = ctrl
        self._handlers = {
            NvmOpcode.FLUSH:        self.flush,
            NvmOpcode.WRITE:        self.write,
            NvmOpcode.READ:         self.read,
            NvmOpcode.COMPARE:      self.compare,
            NvmOpcode.WRITE_ZEROES: self.write_zeroes,
            NvmOpcode.DSM:          self.dataset_management,
        }

    @property
    def store(self):
        return self.ctrl.store

    def execute(self, sqe):
        """Run one command of an I/O SQ: its :class:`Done` (DW0 is always 0). ``lba``
        is the SLBA for Read, Write, Compare and Write Zeroes, for the Error
        Information log (docs/io-commands.md)."""
        lba = slba_of(sqe) if sqe.cdw0.opc in _SLBA_OPCODES else 0
        try:
            self._gate(sqe)(sqe)
        except Refused as refused:
            return Done(status=refused.status, lba=lba)
        return Done(lba=lba)

    # -- Command gating (docs/io-commands.md "Command gating") -------------------------------

    def _gate(self, sqe):
        """The handler of ``sqe``, or :class:`Refused` by the first gate that applies."""
        opc = sqe.cdw0.opc
        if opc == NvmOpcode.FLUSH.value:
            # Flush bypasses the other gates (QEMU): a Format in progress, FUSE.
            if not (sqe.nsid == BROADCAST_NSID or 1 <= sqe.nsid <= NN):
                raise Refused(GenericStatus.INVALID_NAMESPACE, dnr=True)
            return self.flush
        if not 1 <= sqe.nsid <= NN:                 # 0, FFFFFFFFh, above NN
            raise Refused(GenericStatus.INVALID_NAMESPACE, dnr=True)
        if self.ctrl.format_in_progress:            # retry later: no DNR
            raise Refused(GenericStatus.FORMAT_IN_PROGRESS)
        if sqe.cdw0.fuse != 0:                      # FUSES = 0
            raise Refused(GenericStatus.INVALID_FIELD)
        try:
            opcode = NvmOpcode(opc)
        except ValueError:
            raise Refused(GenericStatus.INVALID_OPCODE, dnr=True) from None
        transfers = (opcode in (NvmOpcode.READ, NvmOpcode.WRITE, NvmOpcode.COMPARE)
                     or opcode == NvmOpcode.DSM and fields(DsmDw11, sqe.cdw11).ad)
        if transfers and sqe.cdw0.psdt != 0:        # SGLS = 0 (ours: QEMU takes SGLs)
            raise Refused(GenericStatus.INVALID_FIELD, dnr=True)
        return self._handlers[opcode]

    # -- Common checks -------------------------------------------------------------------

    def _blocks(self, sqe, nlb):
        """The byte range of ``nlb`` blocks (1's based) from SLBA; LBA Out of Range if
        they do not fit in the namespace (overflow of SLBA + NLB included)."""
        slba, size = slba_of(sqe), self.store.lba_bytes
        if slba + nlb > self.store.blocks:          # Python integers do not overflow
            raise Refused(GenericStatus.LBA_OUT_OF_RANGE, dnr=True)
        return slba * size, (slba + nlb) * size

    def _transfer(self, sqe):
        """Read, Write, Compare: MDTS, then the range. ``(start, stop)`` in bytes."""
        nlb = fields(ReadWriteDw12, sqe.cdw12).nlb + 1
        if nlb * self.store.lba_bytes > MDTS_BYTES:
            raise Refused(GenericStatus.INVALID_FIELD, dnr=True)
        return self._blocks(sqe, nlb)

    def _prps(self, sqe, nbytes):
        """Every PRP entry read and checked, before any data moves: the pieces."""
        return prp_walk(sqe.prp1, sqe.prp2, nbytes, self.ctrl.page_bytes,
                        lambda addr, n: self.ctrl.io_read(IoDma.PRP_LIST, addr, n))

    def _from_host(self, pieces):
        """The data of ``pieces`` from host memory, or None if a read failed (the model
        stops at the first failure)."""
        out = bytearray()
        for addr, length in pieces:
            raw = self.ctrl.io_read(IoDma.HOST_READ, addr, length)
            if raw is None:
                return None
            out += raw
        return bytes(out)

    def _to_host(self, pieces, payload):
        """Posted writes: a failed one cannot be reported (DESIGN.md §4); the model
        records it in ``dma_errors`` and goes on."""
        at = 0
        for addr, length in pieces:
            self.ctrl.io_write(addr, payload[at:at + length])
            at += length

    # -- Commands (docs/io-commands.md "Commands") ---------------------------------------

    def flush(self, sqe):
        """FLUSH: nothing to make durable in a model; the backend may fail it."""
        if not self.store.flush():
            raise Refused(MediaStatus.WRITE_FAULT)

    def write(self, sqe):
        start, stop = self._transfer(sqe)
        pieces = self._prps(sqe, stop - start)
        payload = self._from_host(pieces)
        if payload is None:
            # The backend WRITE may have taken part of the data: the blocks are undefined.
            self.store.mark_undefined(start, stop)
            raise Refused(GenericStatus.DATA_TRANSFER_ERROR)
        if not self.store.write(start, payload):
            raise Refused(MediaStatus.WRITE_FAULT)
        self.ctrl.health.write(stop - start)

    def read(self, sqe):
        start, stop = self._transfer(sqe)
        pieces = self._prps(sqe, stop - start)
        payload, ok = self.store.read(start, stop)
        # A failing READ still delivers all its data, and the core passes it on
        # (docs/backend.md rule 6): the host buffer holds what the backend returned.
        self._to_host(pieces, payload)
        if not ok:
            raise Refused(MediaStatus.UNRECOVERED_READ_ERROR)
        self.ctrl.health.read(stop - start)

    def compare(self, sqe):
        start, stop = self._transfer(sqe)
        pieces = self._prps(sqe, stop - start)
        stored, ok = self.store.read(start, stop)
        given = self._from_host(pieces)
        # A host-data error comes before a media error, which comes before the outcome
        # of the comparison (tests never make two of them happen at once).
        if given is None:
            raise Refused(GenericStatus.DATA_TRANSFER_ERROR)
        if not ok:
            raise Refused(MediaStatus.UNRECOVERED_READ_ERROR)
        if given != stored:
            raise Refused(MediaStatus.COMPARE_FAILURE, dnr=True)
        self.ctrl.health.read(stop - start)

    def write_zeroes(self, sqe):
        # No MDTS check: no data moves. DEAC deallocates, which is zeroing here.
        start, stop = self._blocks(sqe, fields(WriteZeroesDw12, sqe.cdw12).nlb + 1)
        if not self.store.zero(start, stop):
            raise Refused(MediaStatus.WRITE_FAULT)

    def dataset_management(self, sqe):
        if not fields(DsmDw11, sqe.cdw11).ad:       # only deallocation does anything
            return
        nbytes = (fields(DsmDw10, sqe.cdw10).nr + 1) * DSM_RANGE_BYTES
        raw = self._from_host(self._prps(sqe, nbytes))
        if raw is None:
            raise Refused(GenericStatus.DATA_TRANSFER_ERROR)
        size, blocks = self.store.lba_bytes, self.store.blocks
        ranges = []
        for at in range(0, nbytes, DSM_RANGE_BYTES):
            r = fields(DsmRange, int.from_bytes(raw[at:at + DSM_RANGE_BYTES], "little"))
            # NLB is 1's based here; an empty range, or one outside the namespace
            # (overflowing included), is skipped and the command still succeeds (QEMU).
            if r.nlb != 0 and r.slba + r.nlb <= blocks:
                ranges.append((r.slba * size, (r.slba + r.nlb) * size))
        for i, (start, stop) in enumerate(ranges):
            if not self.store.zero(start, stop):
                # QEMU stops at the failed range; the RTL may already have sent the ZEROs
                # of the ranges after it. Their blocks are undefined.
                for later in ranges[i + 1:]:
                    self.store.mark_undefined(*later)
                raise Refused(GenericStatus.INTERNAL_ERROR)

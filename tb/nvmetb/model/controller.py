"""Reference model of the NVMe controller, at the level of the core's ports.

Pure Python, built from the same :class:`CoreConfig` and the same layouts as the
gateware; no offset or bit position is typed here. It answers register-bus accesses
(QWORD-aligned, with byte enables: :meth:`reg_read`, :meth:`reg_write`), takes the
PCIe configuration inputs and the test-only inputs (queue sizes, interrupt requests), and
records what the core emits: doorbell updates, asynchronous events, DMA writes (MSI-X
messages) and the INTx level.
"""

from dataclasses import dataclass

from amaranth.lib import data

from nvmecore.config import CoreConfig
from nvmecore.layouts import (
    AQA_WRITABLE_MASK, CC_WRITABLE_MASK, DOORBELL_BASE, MSIX_PBA_BASE, MSIX_TABLE_BASE,
    NVME_VERSION_1_4, Aqa, AsyncEvent, AsyncEventInfoError, AsyncEventType, Cc, Csts,
    LogPage, Reg, ShnType, ShstState,
)
from nvmecore.nvme.ctrl_regs import cap_value
from nvmecore.nvme.irq import INTX_LEVELS

__all__ = ["ControllerModel", "DmaWrite", "DoorbellWrite", "split_access"]

M32 = 0xFFFF_FFFF
M64 = (1 << 64) - 1


def _decode(layout, value):
    return data.Layout.cast(layout).from_bits(value)


def _encode(layout, fields):
    return data.Layout.cast(layout).const(fields).as_bits()


def split_access(offset, size, value=0):
    """(QWORD address, byte enables, data) for a ``size``-byte access at ``offset``."""
    if size not in (1, 2, 4, 8) or offset % size:
        raise ValueError(f"unaligned or odd-sized access: {size} bytes at {offset:#x}")
    shift = offset % 8
    be = ((1 << size) - 1) << shift
    return offset - shift, be, (value << (8 * shift)) & M64


def _byte_mask(be):
    return sum(0xFF << (8 * i) for i in range(8) if be >> i & 1)


@dataclass(frozen=True)
class DoorbellWrite:
    qid: int
    cq: bool
    value: int


@dataclass(frozen=True)
class DmaWrite:
    addr: int
    payload: bytes


class ControllerModel:
    def __init__(self, config: CoreConfig = CoreConfig()):
        self.config = config
        self.cap = cap_value(config)
        # PCIe configuration inputs
        self.msix_enable = False
        self.msix_function_mask = False
        # Emitted
        self.doorbells: list[DoorbellWrite] = []
        self.events: list[int] = []            # AsyncEvent values
        self.dma_writes: list[DmaWrite] = []
        self.bus_reset()

    # -- Resets ---------------------------------------------------------------------

    def bus_reset(self):
        """Power-on, link-down or function-level reset: everything, MSI-X table included."""
        self.msix_addr = [0] * self.config.msix_vectors
        self.msix_data = [0] * self.config.msix_vectors
        self.msix_mask = [True] * self.config.msix_vectors
        self.pba = [False] * self.config.msix_vectors
        self.aqa = self.asq = self.acq = 0
        self.admin_sizes = (0, 0)
        self._controller_reset()

    def _controller_reset(self):
        """CC.EN 1→0 (QEMU's nvme_ctrl_reset): queues gone, CC/CSTS/INTMS cleared;
        AQA, ASQ, ACQ and the MSI-X table stay."""
        self.cc = 0
        self.csts = 0
        self.intms = 0
        self.queue_sizes = {}                 # (qid, cq) -> entries, I/O queues only
        self.intx_pending = [False] * INTX_LEVELS

    # -- Register bus ------------------------------------------------------------------

    def reg_read(self, addr, be=0xFF):
        """The QWORD at ``addr`` (byte enables do not change what a read returns)."""
        assert addr % 8 == 0
        if addr < DOORBELL_BASE:
            return self._dword_read(addr) | self._dword_read(addr + 4) << 32
        if addr < MSIX_TABLE_BASE:
            return 0                                      # doorbells read as 0
        if addr < MSIX_PBA_BASE:
            vector, upper = divmod((addr - MSIX_TABLE_BASE) // 8, 2)
            if vector >= self.config.msix_vectors:
                return 0
            if upper:
                return self.msix_data[vector] | int(self.msix_mask[vector]) << 32
            return self.msix_addr[vector]
        word = (addr - MSIX_PBA_BASE) // 8
        return sum(1 << (v - 64 * word) for v, bit in enumerate(self.pba)
                   if bit and 64 * word <= v < 64 * word + 64)

    def _dword_read(self, offset):
        regs = {
            Reg.CAP: self.cap & M32, Reg.CAP + 4: self.cap >> 32,
            Reg.VS: NVME_VERSION_1_4,
            Reg.INTMS: self.intms, Reg.INTMC: self.intms,
            Reg.CC: self.cc, Reg.CSTS: self.csts, Reg.AQA: self.aqa,
            Reg.ASQ: self.asq & M32, Reg.ASQ + 4: self.asq >> 32,
            Reg.ACQ: self.acq & M32, Reg.ACQ + 4: self.acq >> 32,
        }
        return regs.get(offset, 0)

    def reg_write(self, addr, value, be=0xFF):
        assert addr % 8 == 0
        if addr < DOORBELL_BASE:
            # A QWORD spanning two registers acts as two DWORD writes, low one first.
            for lane in range(2):
                lane_be = be >> (4 * lane) & 0xF
                if lane_be:
                    self._dword_write(addr + 4 * lane, value >> (32 * lane) & M32, lane_be)
        elif addr < MSIX_TABLE_BASE:
            for lane in range(2):
                if be >> (4 * lane) & 0xF == 0xF:          # whole DWORDs only
                    self._doorbell((addr - DOORBELL_BASE) // 8, bool(lane),
                                   value >> (32 * lane) & 0xFFFF)
        elif addr < MSIX_PBA_BASE:
            self._msix_write(addr, value, be)
        # The PBA is read-only.

    def _dword_write(self, offset, value, be):
        mask = _byte_mask(be)

        def merged(old, writable=M32):
            return ((old & ~mask) | (value & mask)) & writable

        if offset == Reg.INTMS:
            self.intms |= value & mask
        elif offset == Reg.INTMC:
            self.intms &= ~(value & mask) & M32
        elif offset == Reg.CC:
            self._cc_write(merged(self.cc, CC_WRITABLE_MASK))
        elif offset == Reg.AQA:
            self.aqa = merged(self.aqa, AQA_WRITABLE_MASK)
        elif offset in (Reg.ASQ, Reg.ASQ + 4, Reg.ACQ, Reg.ACQ + 4):
            name = "asq" if offset in (Reg.ASQ, Reg.ASQ + 4) else "acq"
            shift = 32 * (offset % 8 // 4)
            old = getattr(self, name)
            setattr(self, name, (old & ~(M32 << shift)) | merged(old >> shift & M32) << shift)
        # CAP, VS, CSTS, NSSR, CMBLOC, CMBSZ and undefined offsets ignore writes.

    def _cc_write(self, new):
        old_cc, new_cc = _decode(Cc, self.cc), _decode(Cc, new)
        csts = _decode(Csts, self.csts)
        self.cc = new
        if not old_cc.en and new_cc.en:
            if self._setup_ok(new_cc):
                self.csts = _encode(Csts, {"rdy": 1})
                aqa = _decode(Aqa, self.aqa)
                self.admin_sizes = (aqa.asqs + 1, aqa.acqs + 1)
            else:
                self.csts = _encode(Csts, {"cfs": 1})
        elif old_cc.en and not new_cc.en:
            self._controller_reset()
        elif old_cc.shn == ShnType.NONE and new_cc.shn != ShnType.NONE:
            # Nothing is in flight in the model: the shutdown completes at once.
            self.csts = _encode(Csts, {"rdy": csts.rdy, "cfs": csts.cfs,
                                       "shst": ShstState.COMPLETE})
        elif old_cc.shn != ShnType.NONE and new_cc.shn == ShnType.NONE:
            self.csts = _encode(Csts, {"rdy": csts.rdy, "cfs": csts.cfs,
                                       "shst": ShstState.NORMAL})

    def _setup_ok(self, cc):
        """The checks QEMU's nvme_start_ctrl makes (plus AMS, which CAP does not offer)."""
        page = 1 << (12 + cc.mps)
        aqa = _decode(Aqa, self.aqa)
        return (cc.css == 0 and cc.ams == 0
                and self.config.mps_min <= cc.mps <= self.config.mps_max
                and self.asq % page == 0 and self.acq % page == 0
                and aqa.asqs != 0 and aqa.acqs != 0)

    @property
    def ready(self):
        return bool(_decode(Csts, self.csts).rdy)

    # -- Doorbells ------------------------------------------------------------------------

    def queue_size(self, qid, cq):
        """Entries of queue ``qid`` (SQ or CQ), or None if it does not exist."""
        if qid == 0:
            return self.admin_sizes[int(cq)] if self.ready else None
        return self.queue_sizes.get((qid, bool(cq)))

    def set_queue(self, qid, cq, size=None):
        """Create (``size`` entries) or delete (``size=None``) an I/O queue."""
        if qid >= self.config.queue_pairs:
            return
        if size is None:
            self.queue_sizes.pop((qid, bool(cq)), None)
        else:
            self.queue_sizes[(qid, bool(cq))] = size

    def _doorbell(self, qid, cq, value):
        size = self.queue_size(qid, cq) if qid < self.config.queue_pairs else None
        if size is None:
            self._event(AsyncEventInfoError.INVALID_DOORBELL_REGISTER)
        elif value >= size:
            self._event(AsyncEventInfoError.INVALID_DOORBELL_WRITE_VALUE)
        else:
            self.doorbells.append(DoorbellWrite(qid, cq, value))

    def _event(self, info):
        self.events.append(_encode(AsyncEvent, {
            "type": AsyncEventType.ERROR, "info": info.value,
            "lid": LogPage.ERROR_INFORMATION.value}))

    # -- MSI-X and INTx -----------------------------------------------------------------

    def _msix_write(self, addr, value, be):
        vector, upper = divmod((addr - MSIX_TABLE_BASE) // 8, 2)
        if vector >= self.config.msix_vectors:
            return
        mask = _byte_mask(be)
        if upper:
            self.msix_data[vector] = ((self.msix_data[vector] & ~mask) | (value & mask)) & M32
            if be & 0x10:
                self.msix_mask[vector] = bool(value >> 32 & 1)
                self._flush_pending()
        else:
            # Message Address bits 1:0 are always zero [PCIe 4.0 §7.7.2.1].
            self.msix_addr[vector] = ((self.msix_addr[vector] & ~mask) | (value & mask)) & ~3

    def set_cfg(self, msix_enable=None, msix_function_mask=None):
        if msix_enable is not None:
            self.msix_enable = bool(msix_enable)
        if msix_function_mask is not None:
            self.msix_function_mask = bool(msix_function_mask)
        self._flush_pending()

    def _can_send(self, vector):
        return (self.msix_enable and not self.msix_function_mask
                and not self.msix_mask[vector])

    def _send(self, vector):
        self.dma_writes.append(DmaWrite(self.msix_addr[vector],
                                        self.msix_data[vector].to_bytes(4, "little")))

    def _flush_pending(self):
        for vector, pending in enumerate(self.pba):
            if pending and self._can_send(vector):
                self.pba[vector] = False
                self._send(vector)

    def irq(self, vector, deassert=False):
        """An interrupt request from a CQ (the queue engine; test port for now)."""
        level = vector % INTX_LEVELS
        if deassert:
            self.intx_pending[level] = False
        elif self.msix_enable:
            if vector >= self.config.msix_vectors:
                return
            if self._can_send(vector):
                self._send(vector)
            else:
                self.pba[vector] = True
        else:
            self.intx_pending[level] = True

    @property
    def intx(self):
        return (not self.msix_enable
                and any(p and not self.intms >> i & 1 for i, p in enumerate(self.intx_pending)))

    # -- Convenience for hosts and tests --------------------------------------------------

    def read(self, offset, size=4):
        addr, be, _ = split_access(offset, size)
        shift = 8 * (offset - addr)
        return self.reg_read(addr, be) >> shift & ((1 << (8 * size)) - 1)

    def write(self, offset, value, size=4):
        addr, be, qword = split_access(offset, size, value)
        self.reg_write(addr, qword, be)

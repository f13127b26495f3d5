"""Reference model of the NVMe controller, at the level of the core's ports.

Pure Python, built from the same :class:`CoreConfig` and the same layouts as the
gateware; no offset or bit position is typed here. It answers register-bus accesses
(QWORD-aligned, with byte enables: :meth:`reg_read`, :meth:`reg_write`), takes the
PCIe configuration inputs and the test-only inputs (queue sizes, interrupt requests), and
records what the core emits: doorbell updates, asynchronous events, DMA writes (MSI-X
messages) and the INTx level.

Given host memory (``memory``: any object with ``read(addr, n) -> bytes`` and
``write(addr, data)``), it is also the queue engine and the admin command set of
docs/admin-commands.md and the NVM command set of docs/io-commands.md, at transaction
level. After every input that can make work (a doorbell, CC, the PCIe configuration,
the temperature), it runs to quiescence before returning: SQ entries are fetched round
robin within CQ credit, executed in order, their completions written to the CQs with
interrupts behind them, held Asynchronous Event Requests completed. Without ``memory``
it is the register-level model only.

Timing is not modelled, except the interrupt aggregation time (:meth:`advance_time`).
What the RTL may do differently where timing decides is listed in DESIGN.md §11.

Inputs besides the register bus: :meth:`set_cfg` (MSI-X enable and function mask, bus
master enable, max read request size), ``device_id`` (64 bits, the identity overlay),
``temperature`` (kelvin; setting it compares it with the thresholds), :meth:`irq` (test
port), :meth:`set_queue` (test port), :meth:`bus_reset`, :meth:`advance_time`.

The namespace (the backend's state, :class:`~nvmetb.model.namespace.NamespaceStore` in
``store``): ``namespace`` (its bytes), ``lba_format`` (FLBAS); both survive controller
and bus resets. Media faults: :meth:`fail_namespace`, :meth:`fail_flush`,
:meth:`clear_namespace_faults`; what failed commands left undefined:
:meth:`undefined_ranges`, :meth:`namespace_mismatch`. SMART / Health counters:
``health`` (:class:`~nvmetb.model.io.HealthCounters`, cleared by a bus reset only).

Records, in order: ``doorbells`` (valid doorbell writes), ``events`` (every asynchronous
event raised), ``dma_writes`` (MSI-X messages only; completions and data go to
``memory``), ``dma_reads`` (SQ fetches), ``dma_errors`` (failed memory accesses) and
``posted[cqid]`` (every completion entry posted to each CQ, as
:class:`~nvmetb.model.queues.CompletionEntry`; kept across resets, like the others),
``io_dma`` (the I/O commands' host-memory accesses, :class:`~nvmetb.model.io.IoDma`).
"""

from collections import defaultdict
from dataclasses import dataclass

from amaranth.lib import data

from nvmecore.admin_layouts import QueuePriority
from nvmecore.config import CoreConfig
from nvmecore.layouts import (
    AQA_WRITABLE_MASK,
    CC_WRITABLE_MASK,
    DOORBELL_BASE,
    MSIX_PBA_BASE,
    MSIX_TABLE_BASE,
    NVME_VERSION_1_4,
    Aqa,
    ArbitrationMechanism,
    AsyncEvent,
    AsyncEventInfoError,
    AsyncEventType,
    Cc,
    Csts,
    GenericStatus,
    LogPage,
    Reg,
    ShnType,
    ShstState,
    Sqe,
)
from nvmecore.nvme.ctrl_regs import cap_value
from nvmecore.nvme.identify import CRITICAL_WARNING_TEMPERATURE, DEFAULT_TEMPERATURE_K
from nvmecore.nvme.irq import INTX_LEVELS

from .admin import HELD, AdminCommandSet, Done
from .commands import AsyncEventInfoSmart, Refused, Status, ThresholdType
from .error_log import ErrorLog
from .events import AsyncEventUnit
from .features import Features
from .interrupts import CYCLES_PER_TIME_UNIT, Aggregation
from .io import HealthCounters, IoDma, NvmCommandSet
from .namespace import NamespaceStore
from .prp import prp_segments
from .queues import (
    SQE_BYTES,
    CompletionEntry,
    CompletionQueue,
    RoundRobin,
    SubmissionQueue,
    WeightedRoundRobin,
    fetch_count,
)

__all__ = ["ControllerModel", "DmaRead", "DmaWrite", "DoorbellWrite", "split_access",
           "CYCLES_PER_TIME_UNIT"]

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


@dataclass(frozen=True)
class DmaRead:
    """One SQ fetch: ``length`` bytes from ``addr``."""
    addr: int
    length: int


class ControllerModel:
    def __init__(self, config: CoreConfig = CoreConfig(), memory=None):
        self.config = config
        self.cap = cap_value(config)
        self.memory = memory
        # PCIe configuration inputs
        self.msix_enable = False
        self.msix_function_mask = False
        self.bus_master_enable = True
        self.max_read_request_size = 2          # PCIe encoding: 128 << n bytes (512 B)
        # Other inputs: the identity and the temperature sensor (DESIGN.md §11)
        self.device_id = 0
        self._temperature = DEFAULT_TEMPERATURE_K
        self.cycle = 0                          # moved by advance_time() only
        # Emitted
        self.doorbells: list[DoorbellWrite] = []
        self.events: list[int] = []             # AsyncEvent values, every event raised
        self.dma_writes: list[DmaWrite] = []    # MSI-X messages, in order
        self.dma_reads: list[DmaRead] = []      # SQ fetches, in order
        self.dma_errors: list[tuple] = []       # (op, addr, length, what went wrong)
        self.posted: defaultdict[int, list[CompletionEntry]] = defaultdict(list)
        #: Host address of every CQ slot an entry was written to -> its CQ (never
        #: cleared: a bench tells CQ entry writes from data writes by it).
        self.cq_slots: dict[int, int] = {}
        self.io_dma: list[IoDma] = []           # I/O commands' host-memory accesses
        # The backend's state: survives every reset (docs/io-commands.md "The namespace")
        self.store = NamespaceStore(config.namespace_bytes, config.lba_format)
        # The model formats at once, so this is never set by a command; a test may set
        # it to see I/O commands refused with Format In Progress.
        self.format_in_progress = False
        # Units
        self.features = Features(config)
        self.aer = AsyncEventUnit()
        self.aggregation = Aggregation(config.msix_vectors)
        self.arbiter = RoundRobin()
        self.wrr = WeightedRoundRobin()
        self.admin = AdminCommandSet(self)
        self.io = NvmCommandSet(self)
        self._running = False
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
        self.error_log = ErrorLog()
        self.health = HealthCounters()          # kept by the gateware until FLR
        self._controller_reset()

    def _controller_reset(self):
        """CC.EN 1→0 (QEMU's nvme_ctrl_reset): queues gone, CC/CSTS/INTMS cleared;
        AQA, ASQ, ACQ and the MSI-X table stay. Held AERs and pending events are dropped,
        features return to their defaults; the error log stays. Nothing is in flight in
        the model, so nothing is left to complete first."""
        self.cc = 0
        self.csts = 0
        self.intms = 0
        self.queue_sizes = {}                 # (qid, cq) -> entries, I/O queues only
        self.intx_pending = [False] * INTX_LEVELS
        self.sqs: dict[int, SubmissionQueue] = {}
        self.cqs: dict[int, CompletionQueue] = {}
        self.halted = False                   # a shutdown stops fetching until a reset
        self.aer.reset()
        self.features.reset()
        self.aggregation.reset()
        self.arbiter = RoundRobin()
        self.wrr = WeightedRoundRobin()
        self.temperature_alarm = self._temperature_outside_thresholds()

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
                self._create_admin_queues()
                self.halted = False
            else:
                self.csts = _encode(Csts, {"cfs": 1})
        elif old_cc.en and not new_cc.en:
            self._controller_reset()
        elif old_cc.shn == ShnType.NONE and new_cc.shn != ShnType.NONE:
            # Fetching stops until a controller reset [NVMe 1.4 §7.6.2]. Nothing is in
            # flight in the model: the shutdown completes at once.
            self.halted = True
            self.csts = _encode(Csts, {"rdy": csts.rdy, "cfs": csts.cfs,
                                       "shst": ShstState.COMPLETE})
        elif old_cc.shn != ShnType.NONE and new_cc.shn == ShnType.NONE:
            self.csts = _encode(Csts, {"rdy": csts.rdy, "cfs": csts.cfs,
                                       "shst": ShstState.NORMAL})
        self._run()

    def _setup_ok(self, cc):
        """The checks QEMU's nvme_start_ctrl makes, plus AMS: CAP offers round robin and
        weighted round robin with urgent class only."""
        page = 1 << (12 + cc.mps)
        aqa = _decode(Aqa, self.aqa)
        return (cc.css == 0 and cc.ams in (ArbitrationMechanism.ROUND_ROBIN.value,
                                           ArbitrationMechanism.WRR_URGENT.value)
                and self.config.mps_min <= cc.mps <= self.config.mps_max
                and self.asq % page == 0 and self.acq % page == 0
                and aqa.asqs != 0 and aqa.acqs != 0)

    @property
    def ready(self):
        return bool(_decode(Csts, self.csts).rdy)

    @property
    def cc_fields(self):
        return _decode(Cc, self.cc)

    @property
    def page_bytes(self):
        """The host memory page size, CC.MPS [NVMe 1.4 §3.1.5]."""
        return 1 << (12 + self.cc_fields.mps)

    # -- Doorbells ------------------------------------------------------------------------

    def queue_size(self, qid, cq):
        """Entries of queue ``qid`` (SQ or CQ), or None if it does not exist."""
        if qid == 0:
            return self.admin_sizes[int(cq)] if self.ready else None
        return self.queue_sizes.get((qid, bool(cq)))

    def set_queue(self, qid, cq, size=None):
        """Create (``size`` entries) or delete (``size=None``) an I/O queue in the
        doorbell decoder's size table (the test port; queue creation and deletion drive
        it too, as QueueSizeUpdate does in the gateware)."""
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
            if cq and qid in self.cqs:
                self._cq_head_doorbell(self.cqs[qid], value)
            elif not cq and qid in self.sqs:
                self.sqs[qid].tail = value
            self._run()

    def _cq_head_doorbell(self, cq, head):
        """The host consumed entries: their slots are credit again. A CQ left empty
        withdraws its INTx level [NVMe 1.4 §7.5.1; QEMU nvme_process_db]."""
        cq.head = head
        if cq.empty and cq.ien:
            self.irq(cq.vector, deassert=True)

    def _event(self, info):
        self._raise_event(AsyncEventType.ERROR, info.value, LogPage.ERROR_INFORMATION.value)

    def _raise_event(self, type, info, lid):
        self.events.append(_encode(AsyncEvent, {"type": type, "info": info, "lid": lid}))
        self.aer.report(type, info, lid)
        self._run()

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

    def set_cfg(self, msix_enable=None, msix_function_mask=None, bus_master_enable=None,
                max_read_request_size=None):
        """PCIe configuration inputs. ``max_read_request_size`` is the PCIe encoding
        (0 = 128 B .. 5 = 4096 B) [PCIe 4.0 §7.5.3.4]."""
        if msix_enable is not None:
            self.msix_enable = bool(msix_enable)
        if msix_function_mask is not None:
            self.msix_function_mask = bool(msix_function_mask)
        if bus_master_enable is not None:
            self.bus_master_enable = bool(bus_master_enable)
        if max_read_request_size is not None:
            assert 0 <= max_read_request_size <= 5
            self.max_read_request_size = max_read_request_size
        self._flush_pending()
        self._run()

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
        """An interrupt request from a CQ (the queue engine, and a test port)."""
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

    def _interrupt(self, cq):
        """A completion was posted to ``cq`` (IEN = 1): raise its vector, unless
        aggregation holds it back (I/O CQs whose vector has coalescing enabled)."""
        vector = cq.vector
        threshold, time = self.features.aggregation
        # TIME = 0 allows no delay at all [NVMe 1.4 §5.21.1.8]: every completion fires.
        if cq.qid != 0 and not self.features.coalescing_disabled[vector] and time != 0:
            if not self.aggregation.completion(vector, self.cycle, threshold):
                return
        self.irq(vector)

    def advance_time(self, cycles):
        """Let ``cycles`` clock cycles (250 MHz: 100 µs = 25 000) pass: vectors whose
        aggregation time ran out fire (see :mod:`nvmetb.model.interrupts`)."""
        self.cycle += cycles
        _, time = self.features.aggregation
        for vector in self.aggregation.expired(self.cycle, time):
            self.irq(vector)

    # -- Temperature (DESIGN.md §11) --------------------------------------------------------

    @property
    def temperature(self):
        """The temperature input, kelvin (SMART composite temperature)."""
        return self._temperature

    @temperature.setter
    def temperature(self, kelvin):
        self._temperature = kelvin
        self.check_temperature()

    def _temperature_outside_thresholds(self):
        """Critical warning bit 1: at or above the over threshold, or at or below the
        under threshold [NVMe 1.4 §5.14.1.2, §5.21.1.4]."""
        return (self._temperature >= self.features.threshold[ThresholdType.OVER]
                or self._temperature <= self.features.threshold[ThresholdType.UNDER])

    def check_temperature(self):
        """Compare the temperature with the thresholds (when either changes). Crossing
        into the alarm raises a SMART / Health event (temperature threshold) if
        Asynchronous Event Configuration enables that warning."""
        alarm = self._temperature_outside_thresholds()
        crossed = alarm and not self.temperature_alarm
        self.temperature_alarm = alarm
        if crossed and self.features.smart_events & CRITICAL_WARNING_TEMPERATURE:
            self._raise_event(AsyncEventType.SMART_HEALTH,
                              AsyncEventInfoSmart.TEMPERATURE_THRESHOLD.value,
                              LogPage.SMART_HEALTH.value)

    # -- Queues -----------------------------------------------------------------------------

    def _create_admin_queues(self):
        """CC.EN 0→1: the admin pair from ASQ, ACQ and AQA, vector 0, IEN = 1."""
        sq_size, cq_size = self.admin_sizes
        self.sqs[0] = SubmissionQueue(0, base=self.asq, size=sq_size, cqid=0)
        self.cqs[0] = CompletionQueue(0, base=self.acq, size=cq_size, vector=0, ien=True)

    def create_sq(self, qid, *, base, size, cqid, qprio=0):
        self.sqs[qid] = SubmissionQueue(qid, base=base, size=size, cqid=cqid, qprio=qprio)
        self.set_queue(qid, False, size)

    def create_cq(self, qid, *, base, size, vector, ien):
        self.cqs[qid] = CompletionQueue(qid, base=base, size=size, vector=vector, ien=ien)
        self.set_queue(qid, True, size)

    def delete_sq(self, qid):
        del self.sqs[qid]
        self.set_queue(qid, False, None)

    def delete_cq(self, qid):
        del self.cqs[qid]
        self.set_queue(qid, True, None)

    @property
    def io_queues_exist(self):
        return any(qid != 0 for qid in (*self.sqs, *self.cqs))

    # -- Host memory ---------------------------------------------------------------------

    def _dma_read(self, addr, length):
        """Bytes from host memory, or None if the read failed (the memory raised, or
        returned something that is not ``length`` bytes)."""
        try:
            raw = self.memory.read(addr, length)
        except Exception as error:                   # any failure is a bus error
            self.dma_errors.append(("read", addr, length, error))
            return None
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != length:
            self.dma_errors.append(("read", addr, length, raw))
            return None
        return bytes(raw)

    def _dma_write(self, addr, payload):
        """Write to host memory; False if the write failed."""
        try:
            result = self.memory.write(addr, payload)
        except Exception as error:
            self.dma_errors.append(("write", addr, len(payload), error))
            return False
        if isinstance(result, Exception):
            self.dma_errors.append(("write", addr, len(payload), result))
            return False
        return True

    def io_read(self, kind, addr, length):
        """An I/O command's read of host memory (:class:`IoDma` ``kind``), recorded in
        ``io_dma``: the bytes, or None if it failed."""
        self.io_dma.append(IoDma(kind, addr, length))
        return self._dma_read(addr, length)

    def io_write(self, addr, payload):
        """An I/O command's posted write to host memory, recorded in ``io_dma``."""
        self.io_dma.append(IoDma(IoDma.HOST_WRITE, addr, len(payload)))
        return self._dma_write(addr, payload)

    def to_host(self, sqe, payload):
        """A command's data to the host through PRP1 / PRP2; a failed write is a Data
        Transfer Error [NVMe 1.4 Figure 127 (04h)]."""
        at = 0
        for addr, length in prp_segments(sqe.prp1, sqe.prp2, len(payload), self.page_bytes):
            if not self._dma_write(addr, payload[at:at + length]):
                raise Refused(GenericStatus.DATA_TRANSFER_ERROR)
            at += length

    # -- The queue engine ----------------------------------------------------------------

    @property
    def fetching(self):
        """Fetching (and posting) runs only while CSTS.RDY = 1, CFS = 0, no shutdown or
        reset is under way and bus mastering is enabled (docs/admin-commands.md)."""
        csts = _decode(Csts, self.csts)
        return (self.memory is not None and csts.rdy and not csts.cfs and not self.halted
                and self.bus_master_enable)

    def _run(self):
        """Work until nothing more can be done. Re-entrant calls (an event raised by a
        command) are absorbed by the loop already running."""
        if self._running:
            return
        self._running = True
        try:
            while self.fetching and (self._complete_held_requests() or self._fetch()):
                pass
        finally:
            self._running = False

    def _fetch(self):
        """One arbitration turn: fetch a burst from the next SQ with work and credit,
        then execute its commands in order. False if no SQ could be served."""
        ready = [qid for qid, sq in self.sqs.items()
                 if sq.available and self.cqs[sq.cqid].credit > 0]
        limit = None
        wrr = self.cc_fields.ams == ArbitrationMechanism.WRR_URGENT.value
        if wrr:
            qid, limit = self.wrr.pick({q: QueuePriority(self.sqs[q].qprio) for q in ready},
                                       self.features.arbitration_weights)
        else:
            qid = self.arbiter.pick(ready)
        if qid is None:
            return False
        sq = self.sqs[qid]
        cq = self.cqs[sq.cqid]
        n = fetch_count(sq, cq, self.features.arbitration_burst,
                        128 << self.max_read_request_size)
        if limit is not None:
            n = min(n, limit)
        assert n > 0, "an SQ with work and credit always gives at least one entry"
        if wrr:
            self.wrr.fetched(n)
        addr = sq.slot_addr(sq.head)
        self.dma_reads.append(DmaRead(addr, n * SQE_BYTES))
        raw = self._dma_read(addr, n * SQE_BYTES)
        if raw is None:
            # A failed SQ fetch is fatal: CSTS.CFS, no more fetching until a reset.
            self.csts |= _encode(Csts, {"cfs": 1})
            return False
        first = sq.head
        sq.head = (sq.head + n) % sq.size
        cq.reserved += n
        for i in range(n):
            slot = (first + i) % sq.size
            self._execute(sq, cq, slot, raw[i * SQE_BYTES:(i + 1) * SQE_BYTES])
        return True

    def _execute(self, sq, cq, slot, raw):
        sqe = _decode(Sqe, int.from_bytes(raw, "little"))
        sq.sqhd = (slot + 1) % sq.size       # SQHD: the head just after this command
        result = self.admin.execute(sqe) if sq.qid == 0 else self.io.execute(sqe)
        cq.reserved -= 1                     # held or completed: the slot is released
        if result is not HELD:
            # An Abort that took a held AER: the AER's completion (Abort Requested) is
            # posted before the Abort's own, as QEMU does.
            while sq.qid == 0 and self.aer.aborted:
                request = self.aer.aborted.popleft()
                self._post(cq, sq, request.cid, request.nsid,
                           Done(0, Status.of(GenericStatus.ABORT_REQUESTED)))
            self._post(cq, sq, sqe.cdw0.cid, sqe.nsid, result)
        self._complete_held_requests()

    def _complete_held_requests(self):
        """Complete held Asynchronous Event Requests (aborted ones, then those with an
        event to report) while the admin CQ has a free slot; True if any was. Their
        SQHD is the admin SQ's head after the last command executed, so SQHD never
        moves backwards (DESIGN.md §11)."""
        progressed = False
        admin_cq = self.cqs.get(0)
        while self.fetching and admin_cq is not None and admin_cq.credit > 0:
            completion = self.aer.next_completion()
            if completion is None:
                break
            request, dw0, status = completion
            self._post(admin_cq, self.sqs[0], request.cid, request.nsid, Done(dw0, status))
            progressed = True
        return progressed

    def _post(self, cq, sq, cid, nsid, done: Done):
        """Write a completion at the CQ's tail, then its interrupt
        [NVMe 1.4 §4.6, §7.5; docs/admin-commands.md "Posting"]."""
        status: Status = done.status
        entry = CompletionEntry(cid=cid, sqid=sq.qid, sqhd=sq.sqhd, status=status,
                                phase=cq.phase, dw0=done.dw0)
        # A posted write cannot report an error: a failed one is only recorded.
        addr = cq.advance()
        self.cq_slots[addr] = cq.qid
        self._dma_write(addr, entry.to_bytes())
        self.posted[cq.qid].append(entry)
        if not status.ok:
            self.error_log.add(sqid=sq.qid, cid=cid, status=status, nsid=nsid, lba=done.lba)
        if cq.ien:
            self._interrupt(cq)

    # -- The namespace (the backend's state) ----------------------------------------------

    @property
    def namespace(self):
        """The namespace image: a bytearray of ``config.namespace_bytes``, zero in a new
        model, kept across controller and bus resets."""
        return self.store.data

    @property
    def lba_format(self):
        """The current LBA format (FLBAS): ``config.lba_format`` until a Format NVM."""
        return self.store.lba_format

    def fail_namespace(self, start, stop):
        """Make backend commands that touch namespace bytes ``[start, stop)`` fail (a
        media error), as the AXI backend's bench does with SLVERR on the same range:
        Read, Compare → Unrecovered Read Error; Write, Write Zeroes → Write Fault;
        Dataset Management, Format NVM → Internal Error (docs/io-commands.md)."""
        self.store.fail(start, stop)

    def fail_flush(self, fail=True):
        """Make Flush fail (Write Fault): a backend that reports an error on FLUSH (the
        AXI backend cannot; an external one can)."""
        self.store.flush_fails = bool(fail)

    def clear_namespace_faults(self):
        """No more media faults (undefined bytes stay undefined)."""
        self.store.clear_faults()

    def undefined_ranges(self):
        """The namespace byte ranges ``[(start, stop), ...]`` (sorted, disjoint) whose
        contents are undefined: touched by a failed Write, Write Zeroes, Dataset
        Management or Format NVM, or by a Write whose host data could not be read. A
        later successful Write, Write Zeroes, deallocation or Format defines them again."""
        return list(self.store.undefined)

    def namespace_mismatch(self, image):
        """Compare an RTL namespace image with the model's, skipping undefined bytes:
        None if they agree, else a description of the first difference."""
        return self.store.mismatch(image)

    # -- Convenience for hosts and tests --------------------------------------------------

    def read(self, offset, size=4):
        addr, be, _ = split_access(offset, size)
        shift = 8 * (offset - addr)
        return self.reg_read(addr, be) >> shift & ((1 << (8 * size)) - 1)

    def write(self, offset, value, size=4):
        addr, be, qword = split_access(offset, size, value)
        self.reg_write(addr, qword, be)


"""The benchmark's measurements, inside the simulator (cocotb): the FPGA top
(``nvmecore_usp``) driven on the hard IP's interfaces.

The host side is the adapter bench's: :class:`~nvmetb.bench.usp_backend.UspBackend`
(register accesses as CQ TLPs, configuration) and
:class:`~nvmetb.dma.usp_ports.UspDma` (host memory on RQ / RC) with a memory latency
(cycles to a read's first completion), completions split at every read completion
boundary (``rcb``), straddled, one beat per cycle, no gaps and no backpressure.
:class:`~nvmetb.host.NvmeHost` brings the controller up as Linux does; the measured
traffic is then driven by :class:`PerfBench` itself, a host that writes SQ entries and
polls CQ entries in zero simulated time (it sees each CQ entry the cycle it arrives)
and rings doorbells with posted writes on CQ, one SQ tail and one CQ head doorbell per
queue for each batch of completions it handles. The core, not the host, is what is
measured.

Every figure is counted in clock cycles of the simulation (``get_sim_time`` / 4 ns),
never in wall-clock time:

- latencies from cycle stamps of single events: a doorbell write's beat on CQ, a read
  request or write leaving on RQ (the cycle of the TLP's last beat, which for these
  one-beat TLPs is its only beat), the last beat on RC;
- rates from the cycles between the ``warmup``-th and the ``warmup + count``-th CQ
  entry write, with the host keeping ``depth`` commands outstanding on every queue.

Every completion is checked (status Success, phase, a CID the host has outstanding), so
a bench that measured failing commands fails instead.
"""

import bisect
import logging
import random
import statistics
from collections import deque
from dataclasses import dataclass, field

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import Event, RisingEdge

from nvmecore.admin_layouts import FeatureId
from nvmecore.layouts import NvmOpcode, Sqe
from nvmecore.pcie.usp_layouts import ReqType
from nvmetb.bench.cocotb_backend import CLOCK_NS
from nvmetb.bench.harness import PATTERNS
from nvmetb.bench.usp_backend import UspBackend, _usp_dma
from nvmetb.dma.usp_ports import UspDmaSettings
from nvmetb.host import NvmeHost, build_sqe, decode_cqe
from nvmetb.host.transport import HostMemoryTransport
from nvmetb.hostmem import PAGE_SIZE, HostMemory
from nvmetb.model import split_access

__all__ = ["PerfBench", "PerfTransport", "cycle", "MPS", "MRRS", "COALESCED_THR",
           "COALESCED_TIME", "median_breakdown"]

log = logging.getLogger("tb")

#: PCIe encodings the bench programs: max payload size 256 B, max read request 512 B.
MPS, MRRS = 1, 2
#: Interrupt coalescing (feature 08h) for the "coalesced" figures: a message per 8
#: completions (THR is 0's based), or after 100 µs.
COALESCED_THR, COALESCED_TIME = 7, 1
QUEUE_ENTRIES = 1024
_M32 = 0xFFFF_FFFF


def cycle():
    """The current clock cycle (simulated time / clock period)."""
    return round(get_sim_time("ns") / CLOCK_NS)


def _field_bytes(name):
    """(first byte, byte count) of a field of the SQ entry layout."""
    from amaranth.lib import data

    f = data.Layout.cast(Sqe)[name]
    return f.offset // 8, f.width // 8


class PerfTransport(HostMemoryTransport):
    """The host driver's transport: register accesses through the backend's CQ / CC
    TLPs, unchecked (the functional benches compare them with the model)."""

    def __init__(self, backend: UspBackend, memory: HostMemory):
        super().__init__(memory)
        self.backend = backend

    async def mmio_read(self, offset, size=4):
        addr, be, _ = split_access(offset, size)
        qword = await self.backend.bus_read(addr, be)
        return qword >> (8 * (offset - addr)) & ((1 << (8 * size)) - 1)

    async def mmio_write(self, offset, value, size=4):
        await self.backend.bus_write(*split_access(offset, size, value))

    async def pci_config(self, *, bus_master=None, msix_enable=None, msix_function_mask=None):
        now = self.backend._cfg
        await self.backend.set_cfg(
            now["msix_enable"] if msix_enable is None else msix_enable,
            now["msix_mask"] if msix_function_mask is None else msix_function_mask,
            now["bme"] if bus_master is None else bus_master)

    async def wait(self, us):
        await self.backend.wait(max(1, round(us * 1000 / CLOCK_NS)))


@dataclass
class _Queue:
    """One I/O queue pair as the measuring host keeps it."""
    qid: int
    sq_base: int
    cq_base: int
    entries: int
    tail: int = 0
    head: int = 0
    phase: int = 1
    outstanding: set = field(default_factory=set)


class PerfBench:
    """The bench for one simulation: bring-up, then measurements (see the module text).

    ``latency``: host memory latency in cycles (0 is taken as the bench's minimum, 1);
    ``rcb``: 64 or 128."""

    def __init__(self, dut, config, *, latency=0, rcb=64, seed=1):
        self.dut = dut
        self.config = config
        self.latency = latency
        self.rcb = rcb
        self.rng = random.Random(seed)
        self.backend = self.dma = self.memory = self.host = None
        self.queues: dict[int, _Queue] = {}
        self._cq_pages: dict[int, int] = {}
        self._sq_pages: dict[int, int] = {}
        self._cqes = deque()
        self._arrived = Event()
        self.events = None          # (cycle, kind, addr) while recording
        self.cq_beats = []          # cycles of CQ (completer request) beats, recording
        self.rc_last = 0
        self.rc_beats, self.rq_beats, self.core_doorbells = [], [], []
        self.axi = None
        self._tap = None
        self._buffers = {}

    # -- Set-up ---------------------------------------------------------------------------

    async def start(self, io_queues):
        config = self.config
        self.backend = UspBackend(self.dut, config, PATTERNS["fast"], 0, ext_tag=True,
                                  max_payload_size=MPS, max_read_request_size=MRRS)
        self.memory = HostMemory(max_payload_size=MPS, max_read_request_size=MRRS)
        settings = UspDmaSettings(latency=max(1, self.latency), split="rcb", rcb=self.rcb,
                                  rc_segments=None)
        self.dma = _usp_dma(self.dut, self.backend, self.memory, settings, config,
                            on_write=self._on_write)
        axi = self._axi_memory()
        await self.backend.start()
        self.dma.start()
        self.axi = axi()
        np_take = self.dma.rq_monitor.on_tlps

        def on_tlps(tlps):
            np_take(tlps)
            if self.events is not None:
                self._record(tlps)
        self.dma.rq_monitor.on_tlps = on_tlps
        self.host = NvmeHost(PerfTransport(self.backend, self.memory), poll_us=0.1,
                             command_timeout_us=2000)
        await self.host.bring_up(io_queues=io_queues, queue_entries=QUEUE_ENTRIES)
        self._adopt_queues()

    def _axi_memory(self):
        """With the AXI4 backend: cocotbext-axi's AxiRam on ``m_axi_*`` with no pauses
        (every channel ready at once), the AXI rules checked; a function that attaches
        it once the clock runs."""
        from nvmetb.backend.cocotb_axi import top_axi_ram

        return top_axi_ram(self.dut, self.config, pause=0.0)

    def stop(self):
        if self._tap is not None:
            self._tap.cancel()
        if self.axi is not None:
            self.axi.stop()
        self.dma.check()
        self.backend.check()
        self.dma.stop()
        self.backend.stop()

    def _adopt_queues(self):
        self.queues.clear()
        self._cq_pages.clear()
        self._sq_pages.clear()
        for qid, sq in self.host.sqs.items():
            if qid == 0:
                continue
            cq = self.host.cqs[sq.cqid]
            self.queues[qid] = _Queue(qid, sq.base, cq.base, sq.entries)
            for page in range(cq.base // PAGE_SIZE,
                              (cq.base + 16 * cq.entries - 1) // PAGE_SIZE + 1):
                self._cq_pages[page] = qid
            for page in range(sq.base // PAGE_SIZE,
                              (sq.base + 64 * sq.entries - 1) // PAGE_SIZE + 1):
                self._sq_pages[page] = qid
        sq, cq = self.host.sqs[0], self.host.cqs[0]
        self._admin = (sq.base, sq.base + 64 * sq.entries, cq.base,
                       cq.base + 16 * cq.entries)

    async def recreate_queues(self, count, ien):
        """Delete the I/O queues and create ``count`` pairs again, interrupts on or
        off (``ien``)."""
        host = self.host
        for qid in sorted(q for q in host.sqs if q):
            await host.delete_io_sq(qid)
        for qid in sorted(q for q in host.cqs if q):
            await host.delete_io_cq(qid)
        for qid in range(1, count + 1):
            await host.create_io_cq(qid, QUEUE_ENTRIES, ien=ien)
            await host.create_io_sq(qid, QUEUE_ENTRIES, cqid=qid)
        self._adopt_queues()

    async def coalescing(self, thr, time):
        await self.host.set_features(FeatureId.INTERRUPT_COALESCING, thr | time << 8)

    # -- Taps -----------------------------------------------------------------------------

    def _record(self, tlps):
        now = cycle()
        for tlp in tlps:
            kind = self._classify(tlp.req_type, tlp.addr)
            self.events.append((now, kind, tlp.addr))

    def _classify(self, req_type, addr):
        page = addr // PAGE_SIZE
        asq_lo, asq_hi, acq_lo, acq_hi = self._admin
        if req_type == ReqType.MEM_READ:
            if page in self._sq_pages or asq_lo <= addr < asq_hi:
                return "sqe-read"
            return "data-read"
        if page in self._cq_pages or acq_lo <= addr < acq_hi:
            return "cqe"
        if HostMemory.MSIX_BASE <= addr < HostMemory.MSIX_BASE + HostMemory.MSIX_STRIDE \
                * HostMemory.MSIX_VECTORS:
            return "msix"
        return "data-write"

    async def _taps(self):
        dut = self.dut
        cq_valid, cq_ready = dut.m_axis_cq_tvalid, dut.m_axis_cq_tready
        rc_valid, rc_ready = dut.m_axis_rc_tvalid, dut.m_axis_rc_tready
        rq_valid, rq_ready = dut.s_axis_rq_tvalid, dut.s_axis_rq_tready
        # A debug build's doorbell tap: the cycle the core's doorbell decoder takes the
        # write, which splits doorbell → SQE read into the adapter's and the core's part.
        tap = self.backend._doorbell_tap if getattr(self.backend, "taps", False) else None
        while True:
            await RisingEdge(dut.user_clk)
            if int(cq_valid.value) and int(cq_ready.value) & 1:
                self.cq_beats.append(cycle())
            if int(rc_valid.value) and int(rc_ready.value) & 1:
                self.rc_last = cycle()
                self.rc_beats.append(self.rc_last)
            if int(rq_valid.value) and int(rq_ready.value) & 1:
                self.rq_beats.append(cycle())
            if tap is not None and tap[0]() & tap[1].mask("valid"):
                self.core_doorbells.append(cycle())

    def recording(self, on):
        if on:
            self.events, self.cq_beats, self.rc_beats, self.rq_beats = [], [], [], []
            self.core_doorbells = []
            self._tap = cocotb.start_soon(self._taps())
        else:
            self.events = None
            if self._tap is not None:
                self._tap.cancel()
                self._tap = None

    # -- Completions ----------------------------------------------------------------------

    def _on_write(self, addr, data):
        qid = self._cq_pages.get(addr // PAGE_SIZE)
        if qid is not None and len(data) == 16:
            self._cqes.append((cycle(), qid, data))
            self._arrived.set()

    def _take(self, qid_filter=None):
        """The CQ entries arrived, checked: [(cycle, qid, cid)]."""
        out = []
        while self._cqes:
            at, qid, raw = self._cqes.popleft()
            q = self.queues[qid]
            cqe = decode_cqe(raw)
            if cqe.status.p != q.phase:
                raise AssertionError(f"CQ {qid} entry {q.head}: phase {cqe.status.p}, "
                                     f"expected {q.phase}")
            if cqe.status.sc != 0 or int(getattr(cqe.status.sct, "value", cqe.status.sct)):
                raise AssertionError(f"CQ {qid}: command {cqe.cid} failed: SCT "
                                     f"{cqe.status.sct} SC {cqe.status.sc:#x}")
            if cqe.cid not in q.outstanding or cqe.dw2.sqid != qid:
                raise AssertionError(f"CQ {qid}: CID {cqe.cid} of SQ {cqe.dw2.sqid} is not "
                                     "outstanding")
            q.outstanding.discard(cqe.cid)
            q.head += 1
            if q.head == q.entries:
                q.head, q.phase = 0, q.phase ^ 1
            out.append((at, qid, cqe.cid))
        return out

    # -- Submission -----------------------------------------------------------------------

    def _doorbell(self, offset, value):
        """A posted doorbell write on CQ, queued behind the ones before it."""
        addr, be, data = split_access(offset, 4, value)
        self.backend.cq.send_nowait(self.backend._write_tlp(addr, be, data).pack_us_cq())

    def _place(self, q, sqe):
        self.memory.write(q.sq_base + 64 * q.tail, sqe)
        q.tail = (q.tail + 1) % q.entries

    def _ring(self, q, sq=True, cq=False):
        if sq:
            self._doorbell(self.host.doorbell(q.qid), q.tail)
        if cq:
            self._doorbell(self.host.doorbell(q.qid, cq=True), q.head)

    # -- Commands -------------------------------------------------------------------------

    def null_commands(self):
        """Flush to namespace 1 (the RAM disk has nothing to flush): a command with no
        data."""
        def make(qid, cid):
            return build_sqe(NvmOpcode.FLUSH, cid, nsid=1)
        return make

    def io_commands(self, op, size, queues, depth):
        """Random Reads or Writes of ``size`` bytes (aligned to the size) to namespace
        1, each command slot with its own page-aligned buffer (and PRP list)."""
        lba = self.config.lba_size
        blocks = size // lba
        positions = self.config.namespace_bytes // size
        opcode = NvmOpcode.READ if op == "read" else NvmOpcode.WRITE
        lba_at, _ = _field_bytes("cdw10")
        templates = {}
        for qid in range(1, queues + 1):
            for cid in range(depth):
                key = (size, qid, cid)
                if key not in self._buffers:
                    self._buffers[key] = self._alloc(size)
                prp1, prp2 = self._buffers[key]
                templates[qid, cid] = bytearray(build_sqe(
                    opcode, cid, nsid=1, prp1=prp1, prp2=prp2, cdw12=blocks - 1))

        def make(qid, cid):
            sqe = templates[qid, cid]
            slba = self.rng.randrange(positions) * blocks
            sqe[lba_at:lba_at + 8] = slba.to_bytes(8, "little")
            return bytes(sqe)
        return make

    def _alloc(self, size):
        """(PRP1, PRP2) of a page-aligned buffer of ``size`` bytes."""
        pages = -(-size // PAGE_SIZE)
        base = self.memory.alloc(pages * PAGE_SIZE, PAGE_SIZE, name="data")
        if pages == 1:
            return base, 0
        if pages == 2:
            return base, base + PAGE_SIZE
        prp_list = self.memory.alloc(PAGE_SIZE, PAGE_SIZE, name="prp-list")
        entries = b"".join((base + PAGE_SIZE * i).to_bytes(8, "little")
                           for i in range(1, pages))
        self.memory.write(prp_list, entries)
        return base, prp_list

    # -- Measurements ---------------------------------------------------------------------

    async def closed_loop(self, make, queues, depth, count, warmup):
        """Keep ``depth`` commands outstanding on each of queues 1..``queues`` until
        ``warmup + count`` have completed (so the window never sees a draining queue),
        then let the rest drain. Returns the cycles from the ``warmup``-th completion to
        the ``warmup + count``-th, and the completion cycles."""
        if depth >= QUEUE_ENTRIES:
            raise ValueError(f"depth {depth}: the queues hold {QUEUE_ENTRIES - 1}")
        active = [self.queues[qid] for qid in range(1, queues + 1)]
        target = warmup + count
        submitted = done = 0
        stamps = []
        free = {q.qid: deque(range(depth)) for q in active}
        self._cqes.clear()
        for q in active:
            while free[q.qid]:
                cid = free[q.qid].popleft()
                self._place(q, make(q.qid, cid))
                q.outstanding.add(cid)
                submitted += 1
        for q in active:
            self._ring(q)
        outstanding = submitted
        deadline = cycle() + 2_000_000
        while outstanding:
            if not self._cqes:
                self._arrived.clear()
                await self._arrived.wait()
                # Entries arriving in the same cycle are handled together.
                if cycle() > deadline:
                    raise AssertionError(f"{outstanding} commands still outstanding")
            touched = {}
            for at, qid, cid in self._take():
                stamps.append(at)
                done += 1
                outstanding -= 1
                free[qid].append(cid)
                touched[qid] = True
            for qid in touched:
                q = self.queues[qid]
                ring = False
                while free[qid] and done < target:
                    cid = free[qid].popleft()
                    self._place(q, make(qid, cid))
                    q.outstanding.add(cid)
                    submitted += 1
                    outstanding += 1
                    ring = True
                self._ring(q, sq=ring, cq=True)
        await self.backend.cq.wait()
        stamps.sort()
        window = stamps[target - 1] - stamps[warmup - 1] if warmup else \
            stamps[target - 1] - stamps[0]
        return window, stamps

    async def rate(self, make, queues, depth, count, warmup, beats=False):
        """Sustained commands per cycle: {"cycles_per_cmd", "commands", "window"}; with
        ``beats``, also the RQ and RC beats per command in the window (the interfaces'
        load, beside the ceiling model's count)."""
        if beats:
            self.recording(True)
        window, stamps = await self.closed_loop(make, queues, depth, count, warmup)
        n = count if warmup else count - 1
        out = {"cycles_per_cmd": window / n, "commands": n, "window": window}
        if beats:
            lo, hi = stamps[max(0, warmup - 1)], stamps[warmup + count - 1]
            for name, seen in (("rq", self.rq_beats), ("rc", self.rc_beats)):
                inside = bisect.bisect_right(seen, hi) - bisect.bisect_right(seen, lo)
                out[f"{name}_beats_per_cmd"] = inside / n
            # Read requests per command: SQ fetches (entries per fetch) and data / PRP
            # list reads, for the findings (outstanding reads by Little's law).
            for kind in ("sqe-read", "data-read"):
                requests = sum(1 for at, k, _ in self.events if k == kind and lo < at <= hi)
                out[f"{kind.replace('-', '_')}s_per_cmd"] = requests / n
            self.recording(False)
        return out

    async def one_command(self, make, qid=1):
        """One command alone on queue ``qid``, recorded: its events from the doorbell."""
        q = self.queues[qid]
        await self.backend.wait(64)
        self.recording(True)
        await RisingEdge(self.dut.user_clk)
        cid = 0
        self._cqes.clear()
        self._place(q, make(qid, cid))
        q.outstanding.add(cid)
        self._ring(q)
        while not self._cqes:
            self._arrived.clear()
            await self._arrived.wait()
        self._take()
        self._ring(q, sq=False, cq=True)
        await self.backend.wait(64)
        events, beats, rc = self.events, self.cq_beats, self.rc_beats
        self.recording(False)
        await self.backend.cq.wait()
        return _breakdown(events, beats, rc, self.core_doorbells)

    async def admin_command(self):
        """Get Features (Arbitration) on the admin queue, recorded."""
        await self.backend.wait(64)
        self.recording(True)
        await self.host.get_features(FeatureId.ARBITRATION)
        await self.backend.wait(64)
        events, beats, rc = self.events, self.cq_beats, self.rc_beats
        self.recording(False)
        return _breakdown(events, beats, rc, self.core_doorbells)


def _breakdown(events, cq_beats, rc_beats, core_doorbells=()):
    """Latencies of one command from its recorded events: doorbell (first CQ beat) → SQ
    entry read request; last RC beat before the CQ entry → CQ entry write; CQ entry →
    MSI-X; doorbell → CQ entry; doorbell → MSI-X; with a debug build's doorbell tap,
    doorbell → the core's doorbell update → SQ entry read request."""
    first = {}
    for at, kind, _ in events:
        first.setdefault(kind, at)
    if "sqe-read" not in first or "cqe" not in first or not cq_beats:
        raise AssertionError(f"incomplete record: {events}, CQ beats {cq_beats}")
    doorbell = max(b for b in cq_beats if b <= first["sqe-read"])
    last_in = max(b for b in rc_beats if b < first["cqe"])
    out = {"doorbell_to_sqe_read": first["sqe-read"] - doorbell,
           "last_in_to_cqe": first["cqe"] - last_in,
           "doorbell_to_cqe": first["cqe"] - doorbell}
    taken = [c for c in core_doorbells if doorbell <= c <= first["sqe-read"]]
    if taken:
        out["doorbell_to_core"] = taken[0] - doorbell
        out["core_to_sqe_read"] = first["sqe-read"] - taken[0]
    if "msix" in first:
        out["cqe_to_msix"] = first["msix"] - first["cqe"]
        out["doorbell_to_msix"] = first["msix"] - doorbell
    return out


def median_breakdown(records):
    keys = set.intersection(*(set(r) for r in records))
    return {k: statistics.median(r[k] for r in records) for k in sorted(keys)}


"""Backend for cocotb on the FPGA top (``UspTop``): the core behind the UltraScale+
adapter, every register access a TLP on the hard IP's interfaces.

:class:`UspBackend` plays the hard IP towards the adapter (PG213 port names):

- register accesses are memory requests to BAR0 on CQ (cocotbext-pcie's ``CqSource``,
  descriptors packed by ``Tlp_us``); a QWORD access with byte enables becomes one 1- or
  2-DWORD TLP, as a CPU's access would; read completions come back on CC (``CcSink``)
  and are checked field by field: tag, requester ID, TC and attributes echoed, status
  SC, DWORD count, byte count and lower address as PCIe computes them from the byte
  enables [PCIe 4.0 §2.3.1.1]; the data is the QWORD (only the DWORDs asked for count,
  :meth:`read_mask`);
- the non-posted credit counter of the hard IP: +1 in each cycle ``pcie_cq_np_req`` is
  not 0, at most 32 (``pcie_cq_np_req_count`` shows it); a read goes out on CQ only with
  a credit, so a completer that stops granting credits stalls reads (and the read fails
  with a time-out). :attr:`most_np` is the most credits granted and not yet used (the
  counter plus reads waiting in the hard IP) ever seen: the reads the hard IP may push
  at the completer;
- configuration as the hard IP reports it: bus master enable in
  ``cfg_function_status``, MSI-X enable and function mask, max payload size, max read
  request size; ``cfg_mgmt`` reads of Device Control answered (extended tag bit:
  :attr:`ext_tag`);
- function-level reset: ``cfg_flr_in_process`` until ``cfg_flr_done`` pulses;
- errors reported to the IP: :attr:`err_cor` / :attr:`err_uncor` count the cycles
  ``cfg_err_cor_in`` / ``cfg_err_uncor_in`` are high (one per error);
- INTx as the hard IP sends it [PG213 "Legacy Interrupt Mode"]: each change of
  ``cfg_interrupt_int[0]`` is an Assert/Deassert_INTA message, acknowledged by a
  ``cfg_interrupt_sent`` pulse :data:`INTX_SENT_CYCLES` later; a change before that
  acknowledgement is a violation (:class:`nvmetb.usp.intx.IntxLink`, which the full
  PCIe stack uses too). The INTx level compared with the model is the one the
  last message sent; the core's test ports as in ``cocotb_backend``.

Host memory on RQ / RC is ``nvmetb.dma.usp_ports.UspDma``. :func:`run_usp_scenario` and
:func:`run_usp_host_scenario` run the register scenarios and the host-driver scenarios
through this backend, unchanged.
"""

import itertools
import logging
import random

import cocotb
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiStreamBus
from cocotbext.pcie.core.tlp import CplStatus, TlpAttr, TlpTc, TlpType
from cocotbext.pcie.core.utils import PcieId
from cocotbext.pcie.xilinx.us.interface import CcSink, CqSource
from cocotbext.pcie.xilinx.us.tlp import Tlp_us

from nvmecore.layouts import BAR0_SIZE
from nvmecore.pcie.usp import DEVCTL_DWORD, DEVCTL_EXT_TAG_BIT
from nvmecore.pcie.usp_layouts import CqDescriptor, ReqType, tuser_layout
from nvmecore.top import CFG_FROM_IP
from nvmetb.hostmem import HostMemory
from nvmetb.model import DmaWrite
from nvmetb.usp.cq import CcParser
from nvmetb.usp.intx import INTX_SENT_CYCLES, IntxLink
from nvmetb.usp.monitor import BeatMonitor

from .cocotb_backend import CLOCK_NS, CocotbPorts
from .harness import PATTERNS, CheckedCore, Mismatch, Pattern
from .io_report import save_io_stats

__all__ = ["UspBackend", "run_usp_scenario", "run_usp_host_scenario", "BAR0_BASE",
           "NP_CREDIT_LIMIT", "INTX_SENT_CYCLES"]

log = logging.getLogger("tb")

#: Where enumeration put BAR0 (64-bit, 16 KiB): high bits set so that an adapter that
#: does not mask the address with the aperture shows it.
BAR0_BASE = 0x0000_0038_FEB0_C000
BAR0_APERTURE = BAR0_SIZE.bit_length() - 1          # log2 of the BAR size [PG213]
#: The hard IP's non-posted credit counter saturates here [PG213 pcie_cq_np_req].
NP_CREDIT_LIMIT = 32
#: Requesters of register accesses: the root port and a few peers, so that a completer
#: that does not copy the requester ID shows it.
REQUESTERS = (PcieId(0, 0, 0), PcieId(0, 1, 0), PcieId(0, 3, 2), PcieId(0x80, 0, 0))
#: cfg_function_status bits for PF0 [PG213]: memory space enable, bus master enable.
MEM_SPACE_ENABLE, BUS_MASTER_ENABLE = 1 << 1, 1 << 2
#: Cycles after a posted write has gone out on CQ before anything that does not go
#: through the completer (configuration, test ports, FLR) may act: the write reaches
#: the core's register bus first, as the model assumes.
POSTED_SETTLE = 16
#: Longest waits for a completion (ns) and for a non-posted credit (cycles).
COMPLETION_WAIT_NS = 200_000
CREDIT_WAIT_CYCLES = 50_000
#: Simulated time after which a scenario has hung (a few times the longest one's).
SCENARIO_LIMIT_US = 2_000
M32 = 0xFFFF_FFFF
_POSTED = {t.value for t in (ReqType.MEM_WRITE, ReqType.MSG, ReqType.MSG_VENDOR,
                             ReqType.MSG_ATS)}


def _span(be):
    """(first, last) enabled byte of a byte-enable mask, or None for none."""
    if not be:
        return None
    return (be & -be).bit_length() - 1, be.bit_length() - 1


class UspBackend(CocotbPorts):
    """The hard IP's side of ``UspTop`` for register scenarios (see the module text).

    ``ext_tag`` is the Extended Tag Field Enable bit the adapter reads from Device
    Control; ``max_payload_size`` / ``max_read_request_size`` are PCIe encodings.
    """

    #: A controller reset waits for reads in flight; one the host never answers ends
    #: only with the adapter's completion time-out, so a settling register is polled
    #: for at least that long.
    poll_cycles = 64

    def __init__(self, dut, config, pattern: Pattern, seed=0, *, ext_tag=True,
                 max_payload_size=0, max_read_request_size=2):
        super().__init__(dut, config, pattern, seed, clock=dut.user_clk)
        self.max_payload_size = max_payload_size
        self.max_read_request_size = max_read_request_size
        self._ext_tag = ext_tag
        self._ext_tag_changed = 0
        self.cycle = 0
        self.credits = 0             # the hard IP's non-posted credit counter
        self.np_taken = 0            # reads that took a credit
        self.np_delivered = 0        # reads whose first beat the completer took
        self.most_np = 0             # most credits + reads taken and not delivered
        self.unanswered = 0          # reads that took a credit, completion not back
        self.most_unanswered = 0
        self.on_flr = []             # called when a function-level reset starts
        self.flr_done_pulses = 0
        self.cfg_reads = 0
        self.dma = None              # the UspDma behind RQ / RC, when there is one
        self.violations = []         # hard-IP rules broken on CC and the cfg ports
        self.intx_link = None        # the IP's side of the INTx handshake (IntxLink)
        self.err_cor = self.err_uncor = 0    # cycles with cfg_err_cor_in / _uncor_in high
        self.cc_monitor = None
        self.cq = self.cc = None
        self._tag = 0
        self._last_write = -POSTED_SETTLE
        self._tlp_rng = random.Random(seed + 7)
        self._cfg = {"msix_enable": 0, "msix_mask": 0, "bme": 1}

    # -- Configuration space ----------------------------------------------------------------

    @property
    def ext_tag(self):
        return self._ext_tag

    @ext_tag.setter
    def ext_tag(self, value):
        self._ext_tag = bool(value)
        self._ext_tag_changed = self.cycle

    def tags_allowed(self):
        """Whether tags from 32 up may appear on RQ now: extended tags are on, or were
        on until so recently that the adapter has not read Device Control since (it reads
        it every 1024 cycles; reads in flight keep their tags)."""
        return self._ext_tag or self.cycle - self._ext_tag_changed < 4096

    def device_control(self):
        """Device Control [PCIe 4.0 §7.5.3.4]: relaxed ordering, MPS, extended tags, no
        snoop, MRRS (Device Status, the upper half, reads 0)."""
        return (1 << 4 | self.max_payload_size << 5 | int(self._ext_tag) << DEVCTL_EXT_TAG_BIT
                | 1 << 11 | self.max_read_request_size << 12)

    async def _cfg_mgmt(self):
        """Answers ``cfg_mgmt`` reads three cycles later, ``done`` for one cycle, as the
        hard IP does."""
        dut = self.dut
        while True:
            await RisingEdge(self.clk)
            if int(dut.cfg_mgmt_read_write_done.value):
                dut.cfg_mgmt_read_write_done.value = 0
                continue
            if not int(dut.cfg_mgmt_read.value):
                continue
            addr = int(dut.cfg_mgmt_addr.value)
            for _ in range(3):
                await RisingEdge(self.clk)
            if addr == DEVCTL_DWORD:
                dut.cfg_mgmt_read_data.value = self.device_control()
            else:
                log.warning("usp: cfg_mgmt read of DWORD %#x, not Device Control", addr)
                dut.cfg_mgmt_read_data.value = 0
            dut.cfg_mgmt_read_write_done.value = 1
            self.cfg_reads += 1

    # -- Set-up ---------------------------------------------------------------------------

    def check(self):
        """Fail if the design broke a rule of the hard IP on CC or the cfg ports."""
        if self.violations:
            raise Mismatch(f"{len(self.violations)} hard-IP rule(s) broken:\n  "
                           + "\n  ".join(self.violations))

    def intx_level(self):
        """INTx as the host sees it: the level of the last message sent."""
        return self.intx_link.level if self.intx_link is not None else False

    @property
    def intx_messages(self):
        return self.intx_link.messages if self.intx_link is not None else 0

    async def start(self):
        dut = self.dut
        Clock(self.clk, CLOCK_NS, unit="ns").start()
        for name in CFG_FROM_IP:
            getattr(dut, name).value = 0
        self._reset_test_ports()
        dut.cfg_max_payload.value = self.max_payload_size
        dut.cfg_max_read_req.value = self.max_read_request_size
        self._drive_cfg()
        self.cq = CqSource(AxiStreamBus.from_prefix(dut, "m_axis_cq"), self.clk)
        self.cc = CcSink(AxiStreamBus.from_prefix(dut, "s_axis_cc"), self.clk)
        self.cq.log.setLevel(logging.WARNING)
        self.cc.log.setLevel(logging.WARNING)
        if self.pattern.stall:
            rng = random.Random(self.rng.random())
            self.cc.set_pause_generator(rng.random() < self.pattern.stall
                                        for _ in itertools.count())
        dut.user_lnk_up.value = 1
        dut.user_reset.value = 1
        await self.wait(4)
        dut.user_reset.value = 0
        self._start_taps()
        width = self.config.data_width
        self.cc_monitor = BeatMonitor(
            dut, "s_axis_cc", lambda: CcParser(width), violations=self.violations,
            clock=self.clk, reset_when=lambda: int(dut.cfg_flr_in_process.value) & 1).start()
        self.intx_link = IntxLink(dut, self.clk, self.violations).start()
        self._tasks += [self.cc_monitor._task, self.intx_link._task,
                        cocotb.start_soon(self._np_credits()),
                        cocotb.start_soon(self._cfg_mgmt()),
                        cocotb.start_soon(self._flr_done_monitor())]
        # Power-on sweep of the MSI-X table.
        await self.wait(self.config.msix_vectors + 4)

    def _drive_cfg(self):
        dut, cfg = self.dut, self._cfg
        dut.cfg_interrupt_msix_enable.value = cfg["msix_enable"]
        dut.cfg_interrupt_msix_mask.value = cfg["msix_mask"]
        dut.cfg_function_status.value = MEM_SPACE_ENABLE | (BUS_MASTER_ENABLE * cfg["bme"])

    async def _np_credits(self):
        """The hard IP's non-posted credit counter; also counts cycles and the reads the
        completer takes on CQ."""
        dut = self.dut
        user = tuser_layout("cq", self.config.data_width)
        sop_bit = user["sop" if self.config.data_width == 256 else "is_sop"].offset
        req_type = data.Layout.cast(CqDescriptor)["req_type"]
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1
            if int(dut.m_axis_cq_tvalid.value) and int(dut.m_axis_cq_tready.value) \
                    and int(dut.m_axis_cq_tuser.value) >> sop_bit & 1:
                kind = int(dut.m_axis_cq_tdata.value) >> req_type.offset & 0xF
                if kind not in _POSTED:
                    self.np_delivered += 1
            self.err_cor += int(dut.cfg_err_cor_in.value)
            self.err_uncor += int(dut.cfg_err_uncor_in.value)
            if int(dut.pcie_cq_np_req.value):
                self.credits = min(self.credits + 1, NP_CREDIT_LIMIT)
            dut.pcie_cq_np_req_count.value = self.credits
            self.most_np = max(self.most_np,
                               self.credits + self.np_taken - self.np_delivered)

    async def _flr_done_monitor(self):
        while True:
            await RisingEdge(self.clk)
            if int(self.dut.cfg_flr_done.value) & 1:
                self.flr_done_pulses += 1

    async def _settle(self):
        """Let posted writes already sent reach the core."""
        while self.cycle < self._last_write + POSTED_SETTLE:
            await RisingEdge(self.clk)

    # -- Register accesses as TLPs ----------------------------------------------------------

    def _request(self, fmt_type, addr, dwords, first_be, last_be, data=b""):
        tlp = Tlp_us()
        tlp.fmt_type = fmt_type
        tlp.address = BAR0_BASE + addr
        tlp.length = dwords
        tlp.first_be, tlp.last_be = first_be, last_be
        tlp.requester_id = self._tlp_rng.choice(REQUESTERS)
        tlp.tag = self._tag
        self._tag = (self._tag + 1) % 256
        tlp.tc = TlpTc(self._tlp_rng.randrange(8))
        tlp.attr = TlpAttr(self._tlp_rng.randrange(8))
        tlp.bar_id = 0
        tlp.bar_aperture = BAR0_APERTURE
        tlp.data = bytearray(data)
        return tlp

    @staticmethod
    def _lanes(addr, be):
        """(byte offset, DWORDs, first BE, last BE) of the TLP for a QWORD access."""
        lo, hi = be & 0xF, be >> 4 & 0xF
        if lo and hi:
            return addr, 2, lo, hi
        if hi:
            return addr + 4, 1, hi, 0
        return addr, 1, lo, 0

    def read_mask(self, be):
        lo, hi = be & 0xF, be >> 4 & 0xF
        return (M32 if lo else 0) | (M32 << 32 if hi else 0)

    def _write_tlp(self, addr, be, data):
        offset, dwords, first, last = self._lanes(addr, be)
        shift = 32 * ((offset - addr) // 4)
        payload = (data >> shift & ((1 << (32 * dwords)) - 1)).to_bytes(4 * dwords, "little")
        return self._request(TlpType.MEM_WRITE_64, offset, dwords, first, last, payload)

    def _read_tlp(self, addr, be):
        offset, dwords, first, last = self._lanes(addr, be)
        return self._request(TlpType.MEM_READ_64, offset, dwords, first, last)

    async def _idle_gap(self):
        while self.idle():
            await RisingEdge(self.clk)

    async def _take_credit(self):
        for _ in range(CREDIT_WAIT_CYCLES):
            if self.credits:
                break
            await RisingEdge(self.clk)
        else:
            raise Mismatch(f"no non-posted credit from pcie_cq_np_req within "
                           f"{CREDIT_WAIT_CYCLES} cycles ({self.unanswered} reads "
                           "unanswered)")
        self.credits -= 1
        self.np_taken += 1
        self.unanswered += 1
        self.most_unanswered = max(self.most_unanswered, self.unanswered)

    async def _send_read(self, tlp):
        await self._take_credit()
        await self.cq.send(tlp.pack_us_cq())

    async def _completion(self, tlp):
        """The CC completion of ``tlp``, checked; its payload bytes."""
        try:
            frame = await with_timeout(self.cc.recv(), COMPLETION_WAIT_NS, "ns")
        except SimTimeoutError:
            raise Mismatch(f"no CC completion for the read of {tlp.length} DW at BAR0 + "
                           f"{tlp.address - BAR0_BASE:#x} (tag {tlp.tag}) within "
                           f"{COMPLETION_WAIT_NS} ns; {self.credits} NP credits") from None
        self.unanswered -= 1
        cpl = Tlp_us.unpack_us_cc(frame)
        return cpl, frame

    def _expect(self, tlp, cpl, frame, status=CplStatus.SC):
        """Compare a completion with what PCIe says it must carry [PCIe 4.0 §2.2.9,
        §2.3.1.1]: for memory reads (UR ones too) the bytes the enables cover and the
        address of the first enabled byte; 4 and 0 for other requests."""
        offset = tlp.address - BAR0_BASE
        if tlp.fmt_type not in (TlpType.MEM_READ, TlpType.MEM_READ_64):
            first, last, offset = 0, 3, 0
        elif tlp.length == 1:
            span = _span(tlp.first_be)
            first, last = span if span else (0, 0)
        else:
            first = _span(tlp.first_be)[0]
            last = 4 * (tlp.length - 1) + _span(tlp.last_be)[1]
        dwords = tlp.length if status == CplStatus.SC else 0
        want = {"tag": tlp.tag, "requester_id": tlp.requester_id, "tc": tlp.tc,
                "attr": tlp.attr, "status": status, "length": dwords,
                "byte_count": last - first + 1,
                "lower_address": (offset + first) & 0x7F, "ep": False,
                "discontinue": False, "frame DWORDs": 3 + dwords}
        got = {name: getattr(cpl, name, None) for name in want}
        got["frame DWORDs"] = len(frame.data)
        wrong = {k: (got[k], v) for k, v in want.items() if got[k] != v}
        if wrong:
            detail = ", ".join(f"{k} {g!r} (expected {w!r})" for k, (g, w) in wrong.items())
            raise Mismatch(f"CC completion for the read of {tlp.length} DW at BAR0 + "
                           f"{offset:#x} (BE {tlp.first_be:#x}/{tlp.last_be:#x}): {detail}")

    def _qword(self, addr, be, cpl):
        offset = self._lanes(addr, be)[0]
        value = int.from_bytes(cpl.data[:4 * cpl.length], "little")
        return value << (8 * (offset - addr))

    async def bus_write(self, addr, be, data):
        await self._idle_gap()
        await self.cq.send(self._write_tlp(addr, be, data).pack_us_cq())
        await self.cq.wait()
        self._last_write = self.cycle

    async def bus_read(self, addr, be):
        await self._idle_gap()
        tlp = self._read_tlp(addr, be)
        await self._send_read(tlp)
        cpl, frame = await self._completion(tlp)
        self._expect(tlp, cpl, frame)
        return self._qword(addr, be, cpl)

    async def bus_burst(self, ops):
        """Register accesses sent back to back without waiting for completions (reads
        still wait for a credit each): ``("r", addr, be)`` or ``("w", addr, be, data)``.
        Returns the read QWORDs in order."""
        reads = []

        async def sender():
            for op in ops:
                if op[0] == "w":
                    await self.cq.send(self._write_tlp(*op[1:]).pack_us_cq())
                else:
                    tlp = self._read_tlp(*op[1:])
                    reads.append((op[1], op[2], tlp))
                    await self._send_read(tlp)

        task = cocotb.start_soon(sender())
        results = []
        for _ in range(sum(op[0] == "r" for op in ops)):
            while len(reads) <= len(results):
                await RisingEdge(self.clk)
            addr, be, tlp = reads[len(results)]
            cpl, frame = await self._completion(tlp)
            self._expect(tlp, cpl, frame)
            results.append(self._qword(addr, be, cpl))
        await task
        await self.cq.wait()
        self._last_write = self.cycle
        return results

    async def raw_write(self, offset, payload):
        """A memory write of whole DWORDs on CQ (a copy into BAR0), delivered."""
        dwords = len(payload) // 4
        tlp = self._request(TlpType.MEM_WRITE_64, offset, dwords, 0xF,
                            0xF if dwords > 1 else 0, payload)
        await self.cq.send(tlp.pack_us_cq())
        await self.cq.wait()
        self._last_write = self.cycle

    async def raw_read(self, fmt_type, offset, dwords, first_be=0xF, last_be=0xF):
        """Any read request on CQ (an I/O read, a long read): the completion TLP."""
        tlp = self._request(fmt_type, offset, dwords, first_be, last_be if dwords > 1 else 0)
        await self._send_read(tlp)
        cpl, frame = await self._completion(tlp)
        return tlp, cpl, frame

    # -- Everything else ----------------------------------------------------------------------

    async def set_cfg(self, msix_enable, msix_function_mask, bus_master_enable=True):
        await self._settle()
        self._cfg = {"msix_enable": int(msix_enable), "msix_mask": int(msix_function_mask),
                     "bme": int(bus_master_enable)}
        self._drive_cfg()
        await RisingEdge(self.clk)

    async def queue(self, qid, cq, size):
        await self._settle()
        await super().queue(qid, cq, size)

    async def irq(self, vector, deassert):
        await self._settle()
        await super().irq(vector, deassert)

    async def set_temperature(self, kelvin):
        await self._settle()
        await super().set_temperature(kelvin)

    async def flr(self, limit=256):
        """Function-level reset: ``cfg_flr_in_process[0]`` until the adapter answers with
        ``cfg_flr_done[0]`` (within ``limit`` cycles), as the hard IP does."""
        await self._settle()
        for hook in self.on_flr:
            hook()
        pulses = self.flr_done_pulses
        self.dut.cfg_flr_in_process.value = 1
        for _ in range(limit):
            await RisingEdge(self.clk)
            if self.flr_done_pulses > pulses:
                break
        else:
            raise Mismatch(f"cfg_flr_done[0] did not pulse within {limit} cycles of "
                           "cfg_flr_in_process[0]")
        self.dut.cfg_flr_in_process.value = 0
        await RisingEdge(self.clk)


def _name(scenario):
    """A scenario's name, also for a ``functools.partial`` of one."""
    return getattr(scenario, "__name__", None) or _name(scenario.func)


def _usp_dma(dut, backend, memory, settings, config, **kwargs):
    from nvmetb.dma.usp_ports import UspDma

    dma = UspDma(dut, memory, settings, config=config,
                 rq_segments=2 if config.data_width == 512 else 1,
                 ext_tag=backend.tags_allowed, **kwargs)
    backend.dma = dma
    backend.on_flr.append(dma.flush)
    return dma


async def run_usp_scenario(dut, scenario, config, pattern: Pattern, seed=0,
                           limit_us=SCENARIO_LIMIT_US):
    """A register scenario (``async def scenario(core)``) through the adapter. Every
    write on RQ (MSI-X messages) is a DMA write compared with the model's; reads on RQ
    (fetches the register-level model does not make) are never answered."""
    from nvmetb.dma.usp_ports import UspDmaSettings

    backend = UspBackend(dut, config, pattern, seed)
    dma = _usp_dma(dut, backend, HostMemory(), UspDmaSettings(rq_stall=pattern.stall,
                                                               seed=seed),
                   config, answer_reads=False,
                   on_write=lambda addr, data: backend.dma_writes.append(DmaWrite(addr, data)))
    await backend.start()
    dma.start()
    core = CheckedCore(backend)
    try:
        await with_timeout(scenario(core), limit_us, "us")
        await core.check()
        # MSI-X messages go wherever the table says: only the request rules count here.
        dma.check(ignore=("unmapped", "msix"))
        backend.check()
    finally:
        dma.stop()
        backend.stop()
    log.info("%s: %d register reads compared, %d doorbells, %d events, %d MSI-X messages; "
             "at most %d NP credits + reads outstanding", _name(scenario), core.reads,
             len(core.model.doorbells), len(core.model.events), len(core.model.dma_writes),
             backend.most_np)
    return core


async def run_usp_host_scenario(dut, scenario, config, dma="fast", seed=0, *, settings=None,
                                ext_tag=True, max_payload_size=0, max_read_request_size=2,
                                limit_us=SCENARIO_LIMIT_US, **kwargs):
    """A host-driver scenario (``async def scenario(host, bench, **kwargs)``) through the
    adapter, host memory behind RQ / RC (``dma``: a name in ``USP_DMA_SETTINGS``, or
    ``settings``). The scenario finds the backend at ``bench.core.dut`` and the DMA
    model at ``bench.core.dut.dma``. A debug build's RAM disk is compared with the
    model's namespace at the end."""
    from nvmetb.dma.usp_ports import USP_DMA_SETTINGS
    from nvmetb.host import NvmeHost

    from .cocotb_backend import probe_namespace
    from .transport import BenchTransport

    backend = UspBackend(dut, config, PATTERNS["fast"], seed, ext_tag=ext_tag,
                         max_payload_size=max_payload_size,
                         max_read_request_size=max_read_request_size)
    memory = HostMemory(max_payload_size=max_payload_size,
                        max_read_request_size=max_read_request_size)
    usp_dma = _usp_dma(dut, backend, memory, settings or USP_DMA_SETTINGS[dma], config)
    await backend.start()
    usp_dma.start()
    namespace = None
    if config.backend == "ramdisk" and config.debug:
        async def namespace():
            return await probe_namespace(dut, config, dut.user_clk)
    bench = BenchTransport(CheckedCore(backend), memory, namespace=namespace)
    host = NvmeHost(bench, poll_us=0.1, command_timeout_us=200)
    try:
        await with_timeout(scenario(host, bench, **kwargs), limit_us, "us")
        await bench.compare()
        save_io_stats(host, f"{_name(scenario)}-{dma}")
        usp_dma.check()
        backend.check()
    finally:
        usp_dma.stop()
        backend.stop()
    log.info("%s: %d CQ entries and %d MSI-X messages compared; RQ/RC: %s; at most %d NP "
             "credits + reads outstanding", _name(scenario),
             sum(len(v) for v in bench.core.model.posted.values()), len(memory.msix_messages),
             usp_dma.summary(), backend.most_np)
    for kind, addr, length, sent in usp_dma.fault_log:
        log.info("  read of %d B at %#x answered %s (%d completions)", length, addr, kind, sent)
    return bench

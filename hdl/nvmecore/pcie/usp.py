"""UltraScale+ PCIe hard-IP adapter (DESIGN.md §1, §10).

Sits between the hard IP's four AXI4-Stream interfaces and ``cfg_*`` ports and the core's
vendor-neutral ports:

- :class:`~.usp_completer.UspCompleter`: CQ memory requests to BAR0 → register bus; read
  data → CC completions; non-posted credits (``pcie_cq_np_req``); anything else → UR.
- :class:`~.usp_read.UspReadEngine`: DMA reads → tagged read TLPs; RC completions
  (split, interleaved, straddled) → a reorder buffer → data in request order; error
  completions and completion time-outs → error beats.
- :class:`~.usp_requester.UspRequester`: read TLPs and posted writes (CQ entries, data,
  MSI-X messages, in the core's order) → RQ, with request straddling at 512 bits.
- Configuration: bus master enable, MSI-X enable and function mask, max payload and read
  request size from the ``cfg_*`` status ports; extended tags from the Device Control
  register, read through ``cfg_mgmt``; function-level reset (``cfg_flr_in_process``
  resets the core and the adapter, ``cfg_flr_done`` answers); INTx on
  ``cfg_interrupt_int`` while MSI-X is off (the core routes it), one message at a time
  (each waits for ``cfg_interrupt_sent``).

The hard IP's own MSI-X port (``cfg_interrupt_msix_*``) is not used: messages are posted
writes on RQ, behind the CQ entry they announce [DESIGN.md §2].
"""

from amaranth import (
    Cat,
    ClockDomain,
    ClockSignal,
    Const,
    Module,
    ResetInserter,
    ResetSignal,
    Signal,
)
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..bus import DmaRead, DmaWrite, PcieConfig, RegisterBus
from ..config import CoreConfig
from ..layouts import DmaReadRequest
from ..nvme.ready_skid import ReadySkid
from .usp_completer import UspCompleter
from .usp_layouts import USP_WIDTHS, Axis, RqRead
from .usp_read import UspReadEngine
from .usp_requester import UspRequester
from .usp_skid import AxisSkid, StreamSkid

__all__ = ["UspAdapter", "PCIE_CAP_OFFSET", "DEVCTL_DWORD", "DEVCTL_EXT_TAG_BIT"]

# The UltraScale+ block places the PCI Express capability at 0x70 [PG213 "PCIe
# Configuration Space"]; Device Control is at +0x08 [PCIe 4.0 §7.5.3.4], and its bit 8 is
# Extended Tag Field Enable. cfg_mgmt addresses DWORDs.
PCIE_CAP_OFFSET = 0x70
DEVCTL_DWORD = (PCIE_CAP_OFFSET + 0x08) // 4
DEVCTL_EXT_TAG_BIT = 8
DEVCTL_POLL_CYCLES = 1024        # how often Device Control is read again
FLR_DONE_DELAY = 16              # cycles of reset before answering cfg_flr_done


class UspAdapter(wiring.Component):
    """Adapter for one physical function (PF0). ``rq_straddle`` must match the hard IP's
    "RQ straddle" setting (512-bit only)."""

    @staticmethod
    def check(config: CoreConfig, rq_straddle: bool):
        """Raise ValueError if the adapter cannot be built for ``config``."""
        width = config.data_width
        if width not in USP_WIDTHS:
            raise ValueError(f"the UltraScale+ adapter runs at {USP_WIDTHS} bits, not {width}")
        if rq_straddle and width != 512:
            raise ValueError("RQ straddling exists only on the 512-bit interface")

    def __init__(self, config: CoreConfig, *, rq_straddle=False):
        try:
            self.check(config, rq_straddle)
        except ValueError:
            self._MustUse__silence = True
            raise
        width = config.data_width
        self.config = config
        self.rq_straddle = rq_straddle
        super().__init__({
            # Hard-IP side (names as in PG213, direction as seen from the adapter).
            "cq":  In(Axis("cq", width)),
            "cc":  Out(Axis("cc", width)),
            "rq":  Out(Axis("rq", width)),
            "rc":  In(Axis("rc", width)),
            "pcie_cq_np_req":           Out(2),
            "cfg_max_payload":          In(2),
            "cfg_max_read_req":         In(3),
            "cfg_rcb_status":           In(4),
            "cfg_function_status":      In(16),
            "cfg_interrupt_msix_enable": In(4),
            "cfg_interrupt_msix_mask":  In(4),
            "cfg_flr_in_process":       In(4),
            "cfg_flr_done":             Out(4),
            "cfg_interrupt_int":        Out(4),
            "cfg_interrupt_sent":       In(1),
            "pcie_tfc_nph_av":          In(4),
            "cfg_err_cor_in":           Out(1),
            "cfg_err_uncor_in":         Out(1),
            "cfg_interrupt_pending":    Out(4),
            "cfg_mgmt_addr":            Out(10),
            "cfg_mgmt_read":            Out(1),
            "cfg_mgmt_read_data":       In(32),
            "cfg_mgmt_read_write_done": In(1),
            # Core side.
            "regs":   Out(RegisterBus()),
            "dma_rd": In(DmaRead(width)),
            "dma_wr": In(DmaWrite(width)),
            "core_cfg": Out(PcieConfig()),
            "intx":   In(1),
            # Status: a completer request refused, a DMA write refused, a completion
            # nobody asked for (one-cycle pulses, for counters or an ILA).
            "err_unsupported": Out(1),
            "err_refused":     Out(1),
            "err_unexpected":  Out(1),
        })

    def elaborate(self, platform):
        config = self.config
        m = Module()

        flr = Signal()
        # Non-posted credits count in a domain the FLR does not reset (the hard IP's count
        # survives an FLR [PG156 "Selective Flow Control for Non-Posted Requests"]).
        m.domains.np_credit = np_credit = ClockDomain("np_credit", local=True)
        m.d.comb += [np_credit.clk.eq(ClockSignal("sync")), np_credit.rst.eq(ResetSignal("sync"))]
        body = Module()
        body.submodules.completer = completer = UspCompleter(config.data_width,
                                                             credit_domain="np_credit")
        body.submodules.reader = reader = UspReadEngine(config.data_width,
                                                        config.completion_timeout)
        body.submodules.requester = requester = UspRequester(config.data_width,
                                                             straddle=self.rq_straddle)
        # A function-level reset resets the adapter with the core: the hard IP discards
        # this function's outstanding completions [PG213 "Function Level Reset"].
        m.submodules.body = ResetInserter(flr)(body)

        # -- Streams ------------------------------------------------------------------------
        # Register slices on CQ, CC and RC: every hard-IP input the adapter drives
        # (s_axis_cc_*, m_axis_cq_tready, m_axis_rc_tready) comes from a register
        # (RQ has its own output register).
        body.submodules.cq_skid = cq_skid = AxisSkid("cq", config.data_width)
        body.submodules.cc_skid = cc_skid = AxisSkid("cc", config.data_width)
        body.submodules.rc_skid = rc_skid = AxisSkid("rc", config.data_width)
        wiring.connect(m, wiring.flipped(self.cq), cq_skid.i)
        wiring.connect(m, cq_skid.o, completer.cq)
        wiring.connect(m, completer.cc, cc_skid.i)
        wiring.connect(m, cc_skid.o, wiring.flipped(self.cc))
        wiring.connect(m, completer.regs, wiring.flipped(self.regs))
        wiring.connect(m, wiring.flipped(self.rc), rc_skid.i)
        wiring.connect(m, rc_skid.o, reader.rc)
        # A registered-ready skid buffer between the core's read requests and the read
        # engine (no ready chain from the engine into the core; a request passes through
        # while the spare register is empty: no added cycle), and a register slice between
        # the engine's TLPs and the requester (no long ready chain from RQ's tready into
        # the engine; a pass-through there would chain the engine's issue decision into
        # the requester's beat logic: 13 / 16 LUT levels at 256 / 512 bits)
        body.submodules.rd_skid = rd_skid = ReadySkid(DmaReadRequest)
        body.submodules.tlp_skid = tlp_skid = StreamSkid(RqRead)
        wiring.connect(m, rd_skid.o, reader.req)
        wiring.connect(m, reader.tlp, tlp_skid.i)
        wiring.connect(m, tlp_skid.o, requester.rd)
        wiring.connect(m, requester.rq, wiring.flipped(self.rq))
        wiring.connect(m, wiring.flipped(self.dma_wr), requester.wr)
        m.d.comb += [
            rd_skid.i.valid.eq(self.dma_rd.req.valid),
            rd_skid.i.payload.eq(self.dma_rd.req.payload),
            self.dma_rd.req.ready.eq(rd_skid.i.ready),
            self.dma_rd.data.valid.eq(reader.data.valid),
            self.dma_rd.data.payload.eq(reader.data.payload),
            reader.data.ready.eq(self.dma_rd.data.ready),
            self.pcie_cq_np_req.eq(completer.np_req),
            self.err_unsupported.eq(completer.unsupported),
            self.err_refused.eq(requester.refused),
            self.err_unexpected.eq(reader.unexpected),
        ]
        # Errors for the hard IP's AER logic, one cycle per error [PG213 "Configuration
        # Status Interface"]; the engines class them as PCIe does.
        m.d.sync += [
            self.cfg_err_cor_in.eq(completer.err_cor | reader.err_cor),
            self.cfg_err_uncor_in.eq(completer.err_uncor | reader.err_uncor),
        ]

        # -- Configuration state [PG213 "Configuration Status Interface"] --------------------
        # cfg_function_status per PF: bit 0 I/O space, 1 memory space, 2 bus master enable,
        # 3 INTx disable.
        mps = Cat(self.cfg_max_payload, Const(0, 1))
        m.d.comb += [
            self.core_cfg.bus_master_enable.eq(self.cfg_function_status[2]),
            self.core_cfg.msix_enable.eq(self.cfg_interrupt_msix_enable[0]),
            self.core_cfg.msix_function_mask.eq(self.cfg_interrupt_msix_mask[0]),
            self.core_cfg.max_payload_size.eq(mps),
            self.core_cfg.max_read_request_size.eq(self.cfg_max_read_req),
            self.core_cfg.flr.eq(flr),
            completer.max_payload_size.eq(mps),
            requester.max_payload_size.eq(mps),
            requester.np_credits.eq(self.pcie_tfc_nph_av),
            reader.max_read_request_size.eq(self.cfg_max_read_req),
            # PF0's Link Control RCB bit: 128 B completion boundaries halve a read's
            # worst-case completion headers [PG213 "Completion Space"]
            reader.rcb_128.eq(self.cfg_rcb_status[0]),
        ]

        # -- Legacy interrupt [PG213 "Legacy Interrupt Mode"] -------------------------------
        # cfg_interrupt_int[0] going 0→1 sends Assert_INTA, 1→0 Deassert_INTA; it may change
        # again only after cfg_interrupt_sent has acknowledged the message. The core's level
        # (driven only while MSI-X is off) is followed one message at a time: changes while
        # a message is on its way fold into the next one.
        int_level = Signal()                # the level the hard IP was last asked for
        int_busy = Signal()                 # its message not yet sent
        with m.If(int_busy):
            with m.If(self.cfg_interrupt_sent):
                m.d.sync += int_busy.eq(0)
        with m.Elif(self.intx != int_level):
            m.d.sync += [int_level.eq(self.intx), int_busy.eq(1)]
        m.d.comb += [
            self.cfg_interrupt_int.eq(int_level),
            self.cfg_interrupt_pending.eq(int_level),
        ]

        # -- Function-level reset [PG213 "cfg_flr_in_process / cfg_flr_done"] ----------------
        # While cfg_flr_in_process[0] is high the core and the adapter are held in reset;
        # after FLR_DONE_DELAY cycles cfg_flr_done[0] pulses once, and the hard IP then
        # lowers cfg_flr_in_process.
        # flr is a register (the reset it distributes reaches the whole core), and so is
        # cfg_flr_done.
        m.d.sync += flr.eq(self.cfg_flr_in_process[0])
        flr_count = Signal(range(FLR_DONE_DELAY + 1))
        with m.If(~flr):
            m.d.sync += flr_count.eq(0)
        with m.Elif(flr_count < FLR_DONE_DELAY):
            m.d.sync += flr_count.eq(flr_count + 1)
        flr_done = Signal()
        m.d.sync += flr_done.eq(flr & (flr_count == FLR_DONE_DELAY - 2))
        m.d.comb += self.cfg_flr_done[0].eq(flr_done)

        # -- Extended tags: poll Device Control through cfg_mgmt -----------------------------
        ext_tag = Signal()
        poll = Signal(range(DEVCTL_POLL_CYCLES))
        m.d.comb += [self.cfg_mgmt_addr.eq(DEVCTL_DWORD), reader.ext_tag_enable.eq(ext_tag)]
        mgmt_read = Signal()                    # cfg_mgmt_read, from a register
        m.d.comb += self.cfg_mgmt_read.eq(mgmt_read)
        with m.If(~mgmt_read):
            m.d.sync += poll.eq(poll + 1)
            with m.If(poll == DEVCTL_POLL_CYCLES - 1):
                m.d.sync += mgmt_read.eq(1)
        with m.Elif(self.cfg_mgmt_read_write_done):
            m.d.sync += [ext_tag.eq(self.cfg_mgmt_read_data[DEVCTL_EXT_TAG_BIT]),
                         poll.eq(0), mgmt_read.eq(0)]
        return m

"""NvmeCore: the vendor-neutral NVMe controller (DESIGN.md §1).

It knows nothing of the PCIe hard IP in front of it: BAR0 accesses arrive on ``regs``,
DMA reads (SQ entries) and writes (CQ entries, Identify and log data, MSI-X messages)
use ``dma_rd`` / ``dma_wr``, configuration-space state comes in on ``cfg``, and ``intx``
is the legacy interrupt level. ``device_id`` (a device DNA or straps) personalises the
serial number, NQN, NGUID and EUI-64; ``temperature`` (kelvin; tie to 313 when there is
no sensor) feeds SMART / Health and the temperature threshold feature. A function-level
reset (``cfg.flr``) resets the whole core, MSI-X table included, like the bus reset.

The NVM I/O path stores the namespace in a backend (docs/backend.md): the on-chip RAM
disk (``CoreConfig.backend = "ramdisk"``, no port), an AXI4 master (``"axi"``: port
``axi``) or the user's own on the backend interface (``"external"``: port ``backend``).
The backend keeps the namespace through a function-level reset (it gets ``abort``
instead); so does the LBA format register.

With ``CoreConfig.debug`` the core has test-only ports: ``dbg_queue`` creates and deletes
entries of the doorbell decoder's size table directly, ``dbg_irq`` raises interrupt
requests, and ``dbg_doorbell`` / ``dbg_event`` show (valid only, no handshake) the
doorbell updates and asynchronous events the core acts on.

``error_on_every_beat`` states that the DMA read port flags every beat of a failed read
(the UltraScale+ adapter's read engine does: it delivers a read once all its completions
are in). :class:`~nvmecore.bus.DmaRead` promises less — a failed read may flag only one
beat, the last say — so by default the SQ fetch engine holds a read's entries until its
last beat; with the promise it hands each on as it completes.
"""

from amaranth import Module, ResetInserter, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .backend.axi import Axi4Signature, AxiBackend
from .backend.interface import BackendPort
from .backend.ramdisk import NamespaceProbe, RamDisk
from .bus import DmaRead, DmaWrite, PcieConfig, RegisterBus
from .config import CoreConfig
from .layouts import ArbitrationMechanism, AsyncEvent, DoorbellUpdate, IrqRequest, QueueSizeUpdate
from .nvme.admin import AdminEngine
from .nvme.bar0 import Bar0Decoder
from .nvme.cq_post import CqPoster
from .nvme.ctrl_regs import ControllerRegisters
from .nvme.dma_mux import DmaWriteArbiter
from .nvme.dma_read_mux import DmaReadArbiter
from .nvme.doorbell import DoorbellDecoder
from .nvme.host_writer import HostWriter
from .nvme.io_engine import IoEngine
from .nvme.irq import InterruptUnit
from .nvme.log_source import DataSource
from .nvme.queue_state import QueueState
from .nvme.router import ADMIN_SLOTS, CommandRouter
from .nvme.sq_fetch import FetchEngine
from .pcie.msix import MsixTable

__all__ = ["NvmeCore"]


def _tap(layout):
    return Out(data.StructLayout({"valid": 1, "p": layout}))


class NvmeCore(wiring.Component):
    def __init__(self, config: CoreConfig = CoreConfig(), *, error_on_every_beat=False):
        self.config = config
        self._error_on_every_beat = error_on_every_beat
        members = {
            "regs":        In(RegisterBus()),
            "dma_rd":      Out(DmaRead(config.data_width)),
            "dma_wr":      Out(DmaWrite(config.data_width)),
            "cfg":         In(PcieConfig()),
            "intx":        Out(1),
            "device_id":   In(64),
            "temperature": In(16),
        }
        if config.backend == "axi":
            members["axi"] = Out(Axi4Signature(config.axi_addr_width, config.data_width,
                                               config.axi_id_width))
        elif config.backend == "external":
            members["backend"] = Out(BackendPort(config.data_width,
                                                 config.namespace_addr_width))
        #: The namespace's storage inside the core, made when the core is elaborated (None
        #: with an external backend); benches look into a RAM disk's memories through it.
        self.storage = None
        if config.debug and config.backend == "ramdisk":
            members["dbg_namespace"] = In(NamespaceProbe(config))
        if config.debug:
            members.update({
                "dbg_queue":    In(stream.Signature(QueueSizeUpdate)),
                "dbg_irq":      In(stream.Signature(IrqRequest)),
                "dbg_doorbell": _tap(DoorbellUpdate),
                "dbg_event":    _tap(AsyncEvent),
            })
        super().__init__(members)

    def elaborate(self, platform):
        config = self.config
        m = Module()
        m.submodules.bar0 = bar0 = Bar0Decoder()
        m.submodules.ctrl = ctrl = ControllerRegisters(config)
        m.submodules.doorbell = doorbell = DoorbellDecoder(config)
        m.submodules.msix = msix = MsixTable(config)
        m.submodules.irq = irq = InterruptUnit(config)
        m.submodules.queues = queues = QueueState(config)
        m.submodules.fetch = fetch = FetchEngine(config, admin_slots=ADMIN_SLOTS,
                                                   error_on_every_beat=self._error_on_every_beat)
        m.submodules.router = router = CommandRouter(config)
        m.submodules.admin = admin = AdminEngine(config)
        m.submodules.io = io = IoEngine(config)
        m.submodules.poster = poster = CqPoster(config)
        m.submodules.writer = writer = HostWriter(config.data_width)
        m.submodules.source = source = DataSource(config)
        m.submodules.wr_mux = wr_mux = DmaWriteArbiter(config.data_width, 4)
        m.submodules.rd_mux = rd_mux = DmaReadArbiter(config.data_width, 2, depth=64)

        # -- Register side ------------------------------------------------------------------
        wiring.connect(m, wiring.flipped(self.regs), bar0.bus)
        wiring.connect(m, bar0.ctrl, ctrl.port)
        wiring.connect(m, bar0.doorbell, doorbell.port)
        wiring.connect(m, bar0.msix, msix.port)
        quiescent = (doorbell.idle & msix.idle & fetch.idle & router.idle & admin.idle
                     & io.idle & poster.idle & writer.idle & wr_mux.idle & rd_mux.idle
                     & irq.idle)
        m.d.comb += [
            ctrl.quiescent.eq(quiescent),
            ctrl.fatal.eq(fetch.fatal),
            doorbell.admin_ready.eq(ctrl.ready),
            doorbell.admin_sq_size.eq(ctrl.admin_sq_size),
            doorbell.admin_cq_size.eq(ctrl.admin_cq_size),
            doorbell.ctrl_reset.eq(ctrl.ctrl_reset),
        ]

        # Doorbells move SQ tails and CQ heads; a CQ head returns credit and may clear INTx.
        upd = doorbell.update
        # A queue being set up writes its state through the doorbells' write ports: the
        # doorbell waits that cycle.
        took = upd.valid & upd.ready
        m.d.comb += [
            upd.ready.eq(~admin.setup.valid),
            queues.sq_tail.valid.eq(took & ~upd.p.cq),
            queues.sq_tail.qid.eq(upd.p.qid),
            queues.sq_tail.value.eq(upd.p.value),
            queues.cq_head.valid.eq(took & upd.p.cq),
            queues.cq_head.qid.eq(upd.p.qid),
            queues.cq_head.value.eq(upd.p.value),
            fetch.unblock.eq(took & upd.p.cq),
        ]

        # Queue size table of the doorbell decoder: the admin engine, or the test port.
        dbq = doorbell.queue
        if config.debug:
            test_q = self.dbg_queue
        else:
            test_q = stream.Signature(QueueSizeUpdate).flip().create()
        with m.If(admin.doorbell_queue.valid):
            m.d.comb += [dbq.valid.eq(1), dbq.p.eq(admin.doorbell_queue.p),
                         admin.doorbell_queue.ready.eq(dbq.ready)]
        with m.Else():
            m.d.comb += [dbq.valid.eq(test_q.valid), dbq.p.eq(test_q.p),
                         test_q.ready.eq(dbq.ready)]

        # -- Queue engine ---------------------------------------------------------------------
        for block in (queues, fetch, poster):
            m.d.comb += block.setup.eq(admin.setup)
        m.d.comb += [
            queues.clear.eq(ctrl.ctrl_reset),
            fetch.clear.eq(ctrl.ctrl_reset),
            fetch.run.eq(ctrl.run),
            fetch.bus_master_enable.eq(self.cfg.bus_master_enable),
            fetch.max_read_request_size.eq(self.cfg.max_read_request_size),
            fetch.burst_log2.eq(admin.burst_log2),
            fetch.weights.eq(admin.arbitration),
            fetch.wrr.eq(ctrl.cc.ams == ArbitrationMechanism.WRR_URGENT.value),
            fetch.sq_work.eq(queues.sq_work),
            fetch.reserve.eq(admin.reserve),
            fetch.hold.eq(admin.hold_cq),
            fetch.port_moved.eq(self.dma_rd.data.valid & self.dma_rd.data.ready),
            admin.reserve_ack.eq(fetch.reserve_ack),
        ]
        # DMA reads: SQ entries, then the I/O engine's PRP lists and host data.
        # The queue state's lookups: one port per engine.
        wiring.connect(m, fetch.queues, queues.fetch)
        wiring.connect(m, poster.queues, queues.post)
        wiring.connect(m, admin.queues, queues.admin)
        wiring.connect(m, fetch.dma, rd_mux.in0)
        wiring.connect(m, io.dma_rd, rd_mux.in1)
        wiring.connect(m, rd_mux.out, wiring.flipped(self.dma_rd))
        m.d.comb += rd_mux.bus_master_enable.eq(self.cfg.bus_master_enable)
        wiring.connect(m, fetch.cmd, router.cmd)
        wiring.connect(m, router.admin, admin.cmd)
        wiring.connect(m, router.io, io.cmd)
        wiring.connect(m, io.completion, admin.io_completion)
        wiring.connect(m, admin.completion, poster.completion)
        m.d.comb += [
            router.clear.eq(ctrl.ctrl_reset),
            fetch.admin_taken.eq(router.admin_taken),
            # Each completion leaving the I/O engine frees room for one more I/O command.
            fetch.io_returned.eq(io.completion.valid & io.completion.ready),
        ]

        # -- I/O engine ---------------------------------------------------------------------
        m.d.comb += [
            io.max_payload_size.eq(self.cfg.max_payload_size),
            io.max_read_request_size.eq(self.cfg.max_read_request_size),
            io.flr.eq(self.cfg.flr),
            admin.format_status.eq(io.format_status),
            admin.io_abort_hit.eq(io.abort_hit),
            source.io_counters.eq(io.smart),
            source.lba_format.eq(io.lba_format),
        ]
        wiring.connect(m, admin.format, io.format)
        wiring.connect(m, admin.io_abort, io.abort)

        # -- Admin engine ---------------------------------------------------------------------
        # Held AERs complete while commands run and bus mastering is on; registered, so
        # that a register write (CC) does not reach the CQ slot reservation in one cycle.
        event_enable = Signal()
        m.d.sync += event_enable.eq(ctrl.run & self.cfg.bus_master_enable)
        m.d.comb += admin.event_enable.eq(event_enable)
        m.d.comb += [
            admin.cc.eq(ctrl.cc),
            admin.admin_create.eq(ctrl.admin_create),
            admin.asq.eq(ctrl.asq),
            admin.acq.eq(ctrl.acq),
            admin.admin_sq_size.eq(ctrl.admin_sq_size),
            admin.admin_cq_size.eq(ctrl.admin_cq_size),
            admin.ctrl_reset.eq(ctrl.ctrl_reset),
            admin.msix_enable.eq(self.cfg.msix_enable),
            admin.temperature.eq(self.temperature),
            admin.writer_idle.eq(writer.idle),
            source.select.eq(admin.source),
            source.device_id.eq(self.device_id),
            source.error_entry.eq(admin.error_entry),
            source.temperature.eq(self.temperature),
            source.critical_warning.eq(admin.critical_warning),
            writer.max_payload_size.eq(self.cfg.max_payload_size),
            source.beat.eq(writer.src_beat),
            source.en.eq(writer.src_en),
            writer.src_data.eq(source.data),
        ]
        wiring.connect(m, admin.writer, writer.request)
        wiring.connect(m, doorbell.event, admin.events)

        # -- Posting, interrupts, DMA writes --------------------------------------------------
        m.d.comb += [
            queues.sq_fetched.valid.eq(fetch.cmd.valid & fetch.cmd.ready),
            queues.sq_fetched.qid.eq(fetch.cmd.p.sqid),
            queues.sq_fetched.sqhd.eq(fetch.cmd.p.sqhd),
            irq.cq_empty.eq(queues.head_empty),
            irq.thr.eq(admin.coalescing.thr),
            irq.time.eq(admin.coalescing.time),
            irq.no_coalescing.eq(admin.no_coalescing),
            irq.msix_enable.eq(self.cfg.msix_enable),
            irq.intms.eq(ctrl.intms),
            irq.ctrl_reset.eq(ctrl.ctrl_reset),
            self.intx.eq(irq.intx),
            msix.enable.eq(self.cfg.msix_enable),
            msix.function_mask.eq(self.cfg.msix_function_mask),
            wr_mux.bus_master_enable.eq(self.cfg.bus_master_enable),
        ]
        wiring.connect(m, poster.irq, irq.cq_irq)
        wiring.connect(m, irq.msix, msix.send)
        # Order of preference on the write port: CQ entries, admin data, MSI-X messages,
        # Read data (each of those is behind whatever it follows: the port keeps order).
        wiring.connect(m, poster.dma, wr_mux.in0)
        wiring.connect(m, writer.dma, wr_mux.in1)
        wiring.connect(m, msix.dma, wr_mux.in2)
        wiring.connect(m, io.dma_wr, wr_mux.in3)
        wiring.connect(m, wr_mux.out, wiring.flipped(self.dma_wr))

        if config.debug:
            wiring.connect(m, wiring.flipped(self.dbg_irq), irq.request)
            m.d.comb += [
                self.dbg_doorbell.valid.eq(took),
                self.dbg_doorbell.p.eq(upd.p),
                self.dbg_event.valid.eq(doorbell.event.valid),
                self.dbg_event.p.eq(doorbell.event.p),
            ]

        top = Module()
        top.submodules.body = ResetInserter(self.cfg.flr)(m)
        if config.backend == "ramdisk":
            self.storage = RamDisk(config)
        elif config.backend == "axi":
            self.storage = AxiBackend(config)
        # The backend keeps the namespace through a function-level reset: it is outside
        # the reset and gets `abort` from the I/O engine instead.
        if self.storage is None:
            wiring.connect(top, io.backend, wiring.flipped(self.backend))
        else:
            top.submodules.backend = self.storage
            wiring.connect(top, io.backend, self.storage.port)
            if config.backend == "axi":
                wiring.connect(top, self.storage.axi, wiring.flipped(self.axi))
            if config.debug and config.backend == "ramdisk":
                wiring.connect(top, wiring.flipped(self.dbg_namespace), self.storage.probe)
        return top


"""NvmeCore: the vendor-neutral NVMe controller (DESIGN.md §1).

It knows nothing of the PCIe hard IP in front of it: BAR0 accesses arrive on ``regs``,
DMA writes (MSI-X messages so far) leave on ``dma_wr``, configuration-space state comes
in on ``cfg``, and ``intx`` is the legacy interrupt level. A function-level reset
(``cfg.flr``) resets the whole core, MSI-X table included, like the bus reset.

With ``CoreConfig.debug`` the core has test-only ports: ``dbg_queue`` creates and deletes
queues in the doorbell decoder's size table, ``dbg_irq`` raises interrupt requests, and
``dbg_doorbell`` / ``dbg_event`` show the doorbell updates and the asynchronous events the
queue engine and the event logic will consume.
"""

from amaranth import Module, ResetInserter
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .bus import DmaWrite, PcieConfig, RegisterBus
from .config import CoreConfig
from .layouts import AsyncEvent, DoorbellUpdate, IrqRequest, QueueSizeUpdate
from .nvme.bar0 import Bar0Decoder
from .nvme.ctrl_regs import ControllerRegisters
from .nvme.doorbell import DoorbellDecoder
from .nvme.irq import InterruptUnit
from .pcie.msix import MsixTable

__all__ = ["NvmeCore"]


class NvmeCore(wiring.Component):
    def __init__(self, config: CoreConfig = CoreConfig()):
        self.config = config
        members = {
            "regs":   In(RegisterBus()),
            "dma_wr": Out(DmaWrite(config.data_width)),
            "cfg":    In(PcieConfig()),
            "intx":   Out(1),
        }
        if config.debug:
            members.update({
                "dbg_queue":    In(stream.Signature(QueueSizeUpdate)),
                "dbg_irq":      In(stream.Signature(IrqRequest)),
                "dbg_doorbell": Out(stream.Signature(DoorbellUpdate)),
                "dbg_event":    Out(stream.Signature(AsyncEvent)),
            })
        super().__init__(members)

    def elaborate(self, platform):
        config = self.config
        body = Module()
        body.submodules.bar0 = bar0 = Bar0Decoder()
        body.submodules.ctrl = ctrl = ControllerRegisters(config)
        body.submodules.doorbell = doorbell = DoorbellDecoder(config)
        body.submodules.msix = msix = MsixTable(config)
        body.submodules.irq = irq = InterruptUnit(config)

        wiring.connect(body, wiring.flipped(self.regs), bar0.bus)
        wiring.connect(body, bar0.ctrl, ctrl.port)
        wiring.connect(body, bar0.doorbell, doorbell.port)
        wiring.connect(body, bar0.msix, msix.port)
        wiring.connect(body, msix.dma, wiring.flipped(self.dma_wr))
        wiring.connect(body, irq.msix, msix.send)

        body.d.comb += [
            doorbell.admin_ready.eq(ctrl.ready),
            doorbell.admin_sq_size.eq(ctrl.admin_sq_size),
            doorbell.admin_cq_size.eq(ctrl.admin_cq_size),
            doorbell.ctrl_reset.eq(ctrl.ctrl_reset),
            ctrl.quiescent.eq(doorbell.idle & msix.idle),
            ctrl.fatal.eq(0),                      # SQ fetch errors: queue engine
            msix.enable.eq(self.cfg.msix_enable),
            msix.function_mask.eq(self.cfg.msix_function_mask),
            irq.msix_enable.eq(self.cfg.msix_enable),
            irq.intms.eq(ctrl.intms),
            irq.ctrl_reset.eq(ctrl.ctrl_reset),
            self.intx.eq(irq.intx),
        ]

        if config.debug:
            wiring.connect(body, wiring.flipped(self.dbg_queue), doorbell.queue)
            wiring.connect(body, wiring.flipped(self.dbg_irq), irq.request)
            wiring.connect(body, doorbell.update, wiring.flipped(self.dbg_doorbell))
            wiring.connect(body, doorbell.event, wiring.flipped(self.dbg_event))
        else:
            # Until the queue engine and the event logic exist, nothing consumes
            # doorbell updates and events; nothing raises interrupts.
            body.d.comb += [doorbell.update.ready.eq(1), doorbell.event.ready.eq(1)]

        m = Module()
        m.submodules.body = ResetInserter(self.cfg.flr)(body)
        return m

"""DMA port drivers for the Amaranth simulator: host memory behind the core's ``dma_rd``
and ``dma_wr`` ports.

Each driver is a process for ``Simulator.add_process`` that samples its streams at every
clock edge (``ctx.tick().sample(...)``, as ``amaranth_backend`` does) and drives
``ready`` / ``valid`` for the next cycle; the behaviour itself is
:class:`~nvmetb.dma.behaviour.ReadResponder` / :class:`~nvmetb.dma.behaviour.WriteSink`,
shared with the cocotb drivers.

    dma = AmaranthDma(core.dma_rd, core.dma_wr, memory, DMA_SETTINGS["busy"], cfg=core.cfg)
    for process in dma.processes():
        sim.add_process(process)

With ``cfg`` (the core's :class:`~nvmecore.bus.PcieConfig` port) the size checks use the
max payload / max read request size the core is given at that moment; without it, the
memory's own settings.
"""

from amaranth.lib import data

from nvmecore.bus import DmaReadBeat
from nvmetb.hostmem import HostMemory

from .behaviour import DmaSettings, ReadResponder, StreamRule, WriteSink

__all__ = ["AmaranthDmaRead", "AmaranthDmaWrite", "AmaranthDma"]


class AmaranthDmaRead:
    """Answers the core's DMA reads (``port`` is the core's ``dma_rd`` interface)."""

    def __init__(self, port, memory: HostMemory, settings: DmaSettings | None = None,
                 *, cfg=None):
        self.port = port
        self.width = len(port.data.payload.data)
        self.cfg = cfg
        self.responder = ReadResponder(memory, self.width, settings)
        self.req_rule = StreamRule(memory, "dma_rd.req")
        self._beat = data.Layout.cast(DmaReadBeat(self.width))

    def process(self):
        req, rdata = self.port.req, self.port.data
        limits = [self.cfg.max_read_request_size] if self.cfg is not None else []

        async def dma_read(ctx):
            ctx.set(req.ready, 0)
            ctx.set(rdata.valid, 0)
            async for _, _, rv, rr, rp, dv, dr, *mrrs in ctx.tick().sample(
                    req.valid, req.ready, req.payload, rdata.valid, rdata.ready, *limits):
                self.req_rule.step(rv, rr, rp.as_bits())
                request = (rp.addr, rp.length, rp.tag) if rv and rr else None
                ready, beat = self.responder.step(request, bool(dv and dr),
                                                  mrrs[0] if mrrs else None)
                ctx.set(req.ready, ready)
                if beat is None:
                    ctx.set(rdata.valid, 0)
                else:
                    value, tag, last, error = beat
                    ctx.set(rdata.payload, self._beat.const(
                        {"data": value, "tag": tag, "last": last, "error": error}))
                    ctx.set(rdata.valid, 1)
        return dma_read


class AmaranthDmaWrite:
    """Takes the core's DMA writes (``port`` is the core's ``dma_wr`` interface)."""

    def __init__(self, port, memory: HostMemory, settings: DmaSettings | None = None,
                 *, cfg=None):
        self.port = port
        self.width = len(port.data.payload.data)
        self.cfg = cfg
        self.sink = WriteSink(memory, self.width, settings)
        self.cmd_rule = StreamRule(memory, "dma_wr.cmd")
        self.data_rule = StreamRule(memory, "dma_wr.data")

    def process(self):
        cmd, wdata = self.port.cmd, self.port.data
        limits = [self.cfg.max_payload_size] if self.cfg is not None else []

        async def dma_write(ctx):
            ctx.set(cmd.ready, 0)
            ctx.set(wdata.ready, 0)
            async for _, _, cv, cr, cp, dv, dr, dp, *mps in ctx.tick().sample(
                    cmd.valid, cmd.ready, cmd.payload, wdata.valid, wdata.ready, wdata.payload,
                    *limits):
                self.cmd_rule.step(cv, cr, cp.as_bits())
                self.data_rule.step(dv, dr, dp.as_bits())
                cmd_ready, data_ready = self.sink.step(
                    (cp.addr, cp.length) if cv and cr else None,
                    (dp.data, bool(dp.last)) if dv and dr else None,
                    mps[0] if mps else None)
                ctx.set(cmd.ready, cmd_ready)
                ctx.set(wdata.ready, data_ready)
        return dma_write


class AmaranthDma:
    """Both ports over one :class:`HostMemory`."""

    def __init__(self, dma_rd, dma_wr, memory: HostMemory,
                 settings: DmaSettings | None = None, *, cfg=None):
        self.memory = memory
        self.read = AmaranthDmaRead(dma_rd, memory, settings, cfg=cfg)
        self.write = AmaranthDmaWrite(dma_wr, memory, settings, cfg=cfg)

    def processes(self):
        return [self.read.process(), self.write.process()]

    def flush(self):
        """Discard everything in flight (call on a function-level reset)."""
        self.read.responder.flush()
        self.write.sink.flush()

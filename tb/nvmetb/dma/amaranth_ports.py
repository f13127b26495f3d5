"""DMA port drivers for the Amaranth simulator: host memory behind the core's ``dma_rd``
and ``dma_wr`` ports.

Each driver is a step of an :class:`~nvmetb.amaranth_edges.EdgeProcess`: at every clock
edge it gets its streams' ``valid`` and raw payload bits as sampled at that edge (as
``amaranth_backend`` samples), decodes a payload with a :class:`~nvmetb.packing.Packer`
only when it matters, and drives ``ready`` / ``valid`` for the next cycle (the values it
drives itself are known, not sampled); the behaviour itself is
:class:`~nvmetb.dma.behaviour.ReadResponder` / :class:`~nvmetb.dma.behaviour.WriteSink`,
shared with the cocotb drivers.

    dma = AmaranthDma(core.dma_rd, core.dma_wr, memory, DMA_SETTINGS["busy"], cfg=core.cfg)
    for process in dma.processes():           # one process for both ports
        sim.add_process(process)

or ``dma.add_to(edges)`` to run both in a bench's own :class:`EdgeProcess`.

With ``cfg`` (the core's :class:`~nvmecore.bus.PcieConfig` port) the size checks use the
max payload / max read request size the core is given at that moment; without it, the
memory's own settings.
"""

from amaranth.hdl import Const

from nvmetb.amaranth_edges import Driven, EdgeProcess
from nvmetb.hostmem import HostMemory
from nvmetb.packing import Packer

from .behaviour import DmaSettings, ReadResponder, StreamRule, WriteSink

__all__ = ["AmaranthDmaRead", "AmaranthDmaWrite", "AmaranthDma"]


def _limit(cfg, name):
    """``cfg.<name>`` to sample, or a constant the step ignores."""
    return getattr(cfg, name) if cfg is not None else Const(0)


class AmaranthDmaRead:
    """Answers the core's DMA reads (``port`` is the core's ``dma_rd`` interface)."""

    def __init__(self, port, memory: HostMemory, settings: DmaSettings | None = None,
                 *, cfg=None):
        self.port = port
        self.width = len(port.data.payload.data)
        self.cfg = cfg
        self.responder = ReadResponder(memory, self.width, settings)
        self.req_rule = StreamRule(memory, "dma_rd.req")
        self._request = Packer(port.req.payload.shape())
        self._beat = Packer(port.data.payload.shape())
        self._req_ready = Driven(port.req.ready)
        self._data_valid = Driven(port.data.valid)
        self._data_payload = Driven(port.data.payload)

    def add_to(self, edges: EdgeProcess):
        req, rdata = self.port.req, self.port.data
        edges.add(self.step, req.valid, req.payload, rdata.ready,
                  _limit(self.cfg, "max_read_request_size"), init=self._init)

    def process(self):
        edges = EdgeProcess()
        self.add_to(edges)
        return edges.process()

    def _init(self, ctx):
        for signal in (self._req_ready, self._data_valid, self._data_payload):
            signal.reset(ctx)

    def step(self, ctx, req_valid, req_payload, data_ready, mrrs):
        ready = self._req_ready.value
        self.req_rule.step(req_valid, ready, req_payload)
        request = None
        if req_valid and ready:
            p = self._request.unpack(req_payload)
            request = (p.addr, p.length, p.tag)
        taken = bool(self._data_valid.value and data_ready)
        ready, beat = self.responder.step(request, taken,
                                          mrrs if self.cfg is not None else None)
        self._req_ready.set(ctx, ready)
        if beat is None:
            self._data_valid.set(ctx, 0)
        else:
            value, tag, last, error = beat
            self._data_payload.set(ctx, self._beat.pack(data=value, tag=tag, last=last,
                                                        error=error))
            self._data_valid.set(ctx, 1)


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
        self._cmd = Packer(port.cmd.payload.shape())
        self._beat = Packer(port.data.payload.shape())
        self._cmd_ready = Driven(port.cmd.ready)
        self._data_ready = Driven(port.data.ready)

    def add_to(self, edges: EdgeProcess):
        cmd, wdata = self.port.cmd, self.port.data
        edges.add(self.step, cmd.valid, cmd.payload, wdata.valid, wdata.payload,
                  _limit(self.cfg, "max_payload_size"), init=self._init)

    def process(self):
        edges = EdgeProcess()
        self.add_to(edges)
        return edges.process()

    def _init(self, ctx):
        self._cmd_ready.reset(ctx)
        self._data_ready.reset(ctx)

    def step(self, ctx, cmd_valid, cmd_payload, data_valid, data_payload, mps):
        cmd_ready, data_ready = self._cmd_ready.value, self._data_ready.value
        self.cmd_rule.step(cmd_valid, cmd_ready, cmd_payload)
        self.data_rule.step(data_valid, data_ready, data_payload)
        cmd = beat = None
        if cmd_valid and cmd_ready:
            p = self._cmd.unpack(cmd_payload)
            cmd = (p.addr, p.length)
        if data_valid and data_ready:
            p = self._beat.unpack(data_payload)
            beat = (p.data, bool(p.last))
        cmd_ready, data_ready = self.sink.step(cmd, beat, mps if self.cfg is not None else None)
        self._cmd_ready.set(ctx, cmd_ready)
        self._data_ready.set(ctx, data_ready)


class AmaranthDma:
    """Both ports over one :class:`HostMemory`."""

    def __init__(self, dma_rd, dma_wr, memory: HostMemory,
                 settings: DmaSettings | None = None, *, cfg=None):
        self.memory = memory
        self.read = AmaranthDmaRead(dma_rd, memory, settings, cfg=cfg)
        self.write = AmaranthDmaWrite(dma_wr, memory, settings, cfg=cfg)

    def add_to(self, edges: EdgeProcess):
        """Run both drivers as steps of ``edges``."""
        self.read.add_to(edges)
        self.write.add_to(edges)

    def processes(self):
        """One process for both ports."""
        edges = EdgeProcess()
        self.add_to(edges)
        return [edges.process()]

    def flush(self):
        """Discard everything in flight (call on a function-level reset)."""
        self.read.responder.flush()
        self.write.sink.flush()

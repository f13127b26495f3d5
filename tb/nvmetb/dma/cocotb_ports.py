"""DMA port drivers for cocotb: host memory behind the generated Verilog's ``dma_rd`` and
``dma_wr`` ports.

Port names are Amaranth's flattened names (``dma_rd__req__valid``, ``dma_rd__data__payload``,
``cfg__max_read_request_size``, ...); payloads are packed and unpacked with
:class:`~nvmetb.packing.Packer` from the layouts the gateware uses. Each driver is a step
of an :class:`~nvmetb.cocotb_edges.EdgeLoop`: right after every rising edge it samples
``valid`` / ``ready`` and drives its outputs for the next cycle (the ``ready`` / ``valid``
it drives itself are known, not read back; a payload is read only while ``valid`` is
high); while ``rst`` (or the given reset) is high it accepts nothing and forgets what is
in flight. The behaviour is :class:`~nvmetb.dma.behaviour.ReadResponder` /
:class:`~nvmetb.dma.behaviour.WriteSink`, shared with the Amaranth drivers.

    dma = CocotbDma(dut, memory, DMA_SETTINGS["busy"], width=config.data_width).start()
    ...
    dma.stop()

With ``edges`` (a bench's own :class:`~nvmetb.cocotb_edges.EdgeLoop`) the drivers run in
that loop's task; without it they get a loop of their own.
"""

from nvmecore.bus import DmaReadBeat, DmaWriteBeat
from nvmecore.layouts import DmaReadRequest, DmaWriteRequest
from nvmetb.cocotb_edges import EdgeLoop, Output, reader
from nvmetb.hostmem import HostMemory
from nvmetb.packing import Packer

from .behaviour import DmaSettings, ReadResponder, StreamRule, WriteSink

__all__ = ["CocotbDmaRead", "CocotbDmaWrite", "CocotbDma"]


class _Incoming:
    """A stream the design drives and the bench takes: ``valid`` and ``payload`` read,
    ``ready`` driven."""

    def __init__(self, dut, prefix, rule: StreamRule):
        self.valid = reader(getattr(dut, f"{prefix}__valid"))
        self.payload = reader(getattr(dut, f"{prefix}__payload"))
        self.ready = Output(getattr(dut, f"{prefix}__ready"))
        self.rule = rule

    def sample(self):
        """Feed this edge to the stream rule; the payload if it transferred, else None."""
        if not self.valid():
            self.rule.step(False, self.ready.value, None)
            return None
        payload = self.payload()
        self.rule.step(True, self.ready.value, payload)
        return payload if self.ready.value else None


class _Driver:
    def __init__(self, dut, clock, reset, edges):
        self.dut = dut
        self.clk = clock if clock is not None else dut.clk
        self.rst = reset if reset is not None else self._limit("rst")
        self._rst = reader(self.rst) if self.rst is not None else None
        self._own_loop = edges is None
        self.edges = EdgeLoop(self.clk) if edges is None else edges

    def _in_reset(self):
        return self._rst is not None and self._rst() == 1

    def _limit(self, name):
        """The design's port ``name``, if it has one."""
        try:
            return getattr(self.dut, name)
        except AttributeError:
            return None

    def start(self):
        self._idle()
        self.edges.add(self.step)
        if self._own_loop:
            self.edges.start()
        return self

    def stop(self):
        self.edges.remove(self.step)
        if self._own_loop:
            self.edges.stop()

    def _idle(self):
        """Drive the outputs' idle values."""
        raise NotImplementedError

    def step(self):
        """One rising edge."""
        raise NotImplementedError


class CocotbDmaRead(_Driver):
    """Answers DMA reads on ``<prefix>__req`` / ``<prefix>__data``."""

    def __init__(self, dut, memory: HostMemory, settings: DmaSettings | None = None, *,
                 width, prefix="dma_rd", cfg_prefix="cfg", clock=None, reset=None,
                 edges=None):
        super().__init__(dut, clock, reset, edges)
        self.responder = ReadResponder(memory, width, settings)
        self.req_rule = StreamRule(memory, f"{prefix}.req")
        self.req = _Incoming(dut, f"{prefix}__req", self.req_rule)
        self.data_valid = Output(getattr(dut, f"{prefix}__data__valid"))
        self.data_payload = Output(getattr(dut, f"{prefix}__data__payload"))
        self.data_ready = reader(getattr(dut, f"{prefix}__data__ready"))
        mrrs = self._limit(f"{cfg_prefix}__max_read_request_size")
        self.mrrs = reader(mrrs) if mrrs is not None else None
        self._request = Packer(DmaReadRequest)
        self._beat = Packer(DmaReadBeat(width))

    def _idle(self):
        self.req.ready.set(0)
        self.data_valid.set(0)

    def step(self):
        if self._in_reset():
            self._idle()
            self.responder.flush()
            return
        request = mrrs = None
        bits = self.req.sample()
        if bits is not None:
            p = self._request.unpack(bits)
            request = (p.addr, p.length, p.tag)
            mrrs = self.mrrs() if self.mrrs is not None else None
        taken = bool(self.data_valid.value) and self.data_ready() == 1
        ready, beat = self.responder.step(request, taken, mrrs)
        self.req.ready.set(ready)
        if beat is None:
            self.data_valid.set(0)
        else:
            value, tag, last, error = beat
            self.data_payload.set(self._beat.pack(data=value, tag=tag, last=last, error=error))
            self.data_valid.set(1)


class CocotbDmaWrite(_Driver):
    """Takes DMA writes on ``<prefix>__cmd`` / ``<prefix>__data``."""

    def __init__(self, dut, memory: HostMemory, settings: DmaSettings | None = None, *,
                 width, prefix="dma_wr", cfg_prefix="cfg", clock=None, reset=None,
                 edges=None):
        super().__init__(dut, clock, reset, edges)
        self.sink = WriteSink(memory, width, settings)
        self.cmd_rule = StreamRule(memory, f"{prefix}.cmd")
        self.data_rule = StreamRule(memory, f"{prefix}.data")
        self.cmd = _Incoming(dut, f"{prefix}__cmd", self.cmd_rule)
        self.data = _Incoming(dut, f"{prefix}__data", self.data_rule)
        mps = self._limit(f"{cfg_prefix}__max_payload_size")
        self.mps = reader(mps) if mps is not None else None
        self._cmd = Packer(DmaWriteRequest)
        self._beat = Packer(DmaWriteBeat(width))

    def _idle(self):
        self.cmd.ready.set(0)
        self.data.ready.set(0)

    def step(self):
        if self._in_reset():
            self._idle()
            self.sink.flush()
            return
        cmd = beat = mps = None
        bits = self.cmd.sample()
        if bits is not None:
            p = self._cmd.unpack(bits)
            cmd = (p.addr, p.length)
            mps = self.mps() if self.mps is not None else None
        bits = self.data.sample()
        if bits is not None:
            p = self._beat.unpack(bits)
            beat = (p.data, bool(p.last))
        cmd_ready, data_ready = self.sink.step(cmd, beat, mps)
        self.cmd.ready.set(cmd_ready)
        self.data.ready.set(data_ready)


class CocotbDma:
    """Both ports over one :class:`HostMemory`, in one edge loop (``edges``, or one of
    their own)."""

    def __init__(self, dut, memory: HostMemory, settings: DmaSettings | None = None, *,
                 width, clock=None, reset=None, edges=None):
        self.memory = memory
        self._own_loop = edges is None
        self.edges = EdgeLoop(clock if clock is not None else dut.clk) if edges is None \
            else edges
        self.read = CocotbDmaRead(dut, memory, settings, width=width, clock=clock,
                                  reset=reset, edges=self.edges)
        self.write = CocotbDmaWrite(dut, memory, settings, width=width, clock=clock,
                                    reset=reset, edges=self.edges)

    def start(self):
        self.read.start()
        self.write.start()
        if self._own_loop:
            self.edges.start()
        return self

    def stop(self):
        self.read.stop()
        self.write.stop()
        if self._own_loop:
            self.edges.stop()

    def flush(self):
        """Discard everything in flight (call on a function-level reset)."""
        self.read.responder.flush()
        self.write.sink.flush()

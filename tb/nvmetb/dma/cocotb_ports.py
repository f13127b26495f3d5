"""DMA port drivers for cocotb: host memory behind the generated Verilog's ``dma_rd`` and
``dma_wr`` ports.

Port names are Amaranth's flattened names (``dma_rd__req__valid``, ``dma_rd__data__payload``,
``cfg__max_read_request_size``, ...); payloads are packed and unpacked with the layouts the
gateware uses. Each driver is a coroutine started with ``cocotb.start_soon`` that samples
``valid`` / ``ready`` right after every rising edge (as ``cocotb_backend`` does) and drives
its outputs for the next cycle; while ``rst`` (or the given reset) is high it accepts
nothing and forgets what is in flight; the behaviour is
:class:`~nvmetb.dma.behaviour.ReadResponder` / :class:`~nvmetb.dma.behaviour.WriteSink`,
shared with the Amaranth drivers.

    dma = CocotbDma(dut, memory, DMA_SETTINGS["busy"], width=config.data_width).start()
    ...
    dma.stop()
"""

import cocotb
from amaranth.lib import data
from cocotb.triggers import RisingEdge

from nvmecore.bus import DmaReadBeat, DmaWriteBeat
from nvmecore.layouts import DmaReadRequest, DmaWriteRequest
from nvmetb.hostmem import HostMemory

from .behaviour import DmaSettings, ReadResponder, StreamRule, WriteSink

__all__ = ["CocotbDmaRead", "CocotbDmaWrite", "CocotbDma"]


class _Stream:
    def __init__(self, dut, prefix):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")

    def fired(self):
        return self.valid.value == 1 and self.ready.value == 1

    def check(self, rule):
        """Feed the sampled stream to a :class:`StreamRule`; True if it transferred."""
        valid = self.valid.value == 1
        ready = self.ready.value == 1
        rule.step(valid, ready, int(self.payload.value) if valid else None)
        return valid and ready


class _Driver:
    def __init__(self, dut, clock, reset):
        self.dut = dut
        self.clk = clock if clock is not None else dut.clk
        self.rst = reset if reset is not None else self._limit("rst")
        self._task = None

    def _in_reset(self):
        return self.rst is not None and self.rst.value == 1

    def _limit(self, name):
        """The design's port ``name``, if it has one."""
        try:
            return getattr(self.dut, name)
        except AttributeError:
            return None

    def start(self):
        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self):
        raise NotImplementedError


class CocotbDmaRead(_Driver):
    """Answers DMA reads on ``<prefix>__req`` / ``<prefix>__data``."""

    def __init__(self, dut, memory: HostMemory, settings: DmaSettings | None = None, *,
                 width, prefix="dma_rd", cfg_prefix="cfg", clock=None, reset=None):
        super().__init__(dut, clock, reset)
        self.req = _Stream(dut, f"{prefix}__req")
        self.data = _Stream(dut, f"{prefix}__data")
        self.mrrs = self._limit(f"{cfg_prefix}__max_read_request_size")
        self.responder = ReadResponder(memory, width, settings)
        self.req_rule = StreamRule(memory, f"{prefix}.req")
        self._req = data.Layout.cast(DmaReadRequest)
        self._beat = data.Layout.cast(DmaReadBeat(width))

    async def _run(self):
        self.req.ready.value = 0
        self.data.valid.value = 0
        while True:
            await RisingEdge(self.clk)
            if self._in_reset():
                self.req.ready.value = 0
                self.data.valid.value = 0
                self.responder.flush()
                continue
            request = None
            if self.req.check(self.req_rule):
                p = self._req.from_bits(int(self.req.payload.value))
                request = (p.addr, p.length, p.tag)
            ready, beat = self.responder.step(
                request, self.data.fired(),
                int(self.mrrs.value) if self.mrrs is not None else None)
            self.req.ready.value = int(ready)
            if beat is None:
                self.data.valid.value = 0
            else:
                value, tag, last, error = beat
                self.data.payload.value = self._beat.const(
                    {"data": value, "tag": tag, "last": last, "error": error}).as_bits()
                self.data.valid.value = 1


class CocotbDmaWrite(_Driver):
    """Takes DMA writes on ``<prefix>__cmd`` / ``<prefix>__data``."""

    def __init__(self, dut, memory: HostMemory, settings: DmaSettings | None = None, *,
                 width, prefix="dma_wr", cfg_prefix="cfg", clock=None, reset=None):
        super().__init__(dut, clock, reset)
        self.cmd = _Stream(dut, f"{prefix}__cmd")
        self.data = _Stream(dut, f"{prefix}__data")
        self.mps = self._limit(f"{cfg_prefix}__max_payload_size")
        self.sink = WriteSink(memory, width, settings)
        self.cmd_rule = StreamRule(memory, f"{prefix}.cmd")
        self.data_rule = StreamRule(memory, f"{prefix}.data")
        self._cmd = data.Layout.cast(DmaWriteRequest)
        self._beat = data.Layout.cast(DmaWriteBeat(width))

    async def _run(self):
        self.cmd.ready.value = 0
        self.data.ready.value = 0
        while True:
            await RisingEdge(self.clk)
            if self._in_reset():
                self.cmd.ready.value = 0
                self.data.ready.value = 0
                self.sink.flush()
                continue
            cmd = beat = None
            if self.cmd.check(self.cmd_rule):
                p = self._cmd.from_bits(int(self.cmd.payload.value))
                cmd = (p.addr, p.length)
            if self.data.check(self.data_rule):
                p = self._beat.from_bits(int(self.data.payload.value))
                beat = (p.data, bool(p.last))
            cmd_ready, data_ready = self.sink.step(
                cmd, beat, int(self.mps.value) if self.mps is not None else None)
            self.cmd.ready.value = int(cmd_ready)
            self.data.ready.value = int(data_ready)


class CocotbDma:
    """Both ports over one :class:`HostMemory`."""

    def __init__(self, dut, memory: HostMemory, settings: DmaSettings | None = None, *,
                 width, clock=None, reset=None):
        self.memory = memory
        self.read = CocotbDmaRead(dut, memory, settings, width=width, clock=clock, reset=reset)
        self.write = CocotbDmaWrite(dut, memory, settings, width=width, clock=clock,
                                    reset=reset)

    def start(self):
        self.read.start()
        self.write.start()
        return self

    def stop(self):
        self.read.stop()
        self.write.stop()

    def flush(self):
        """Discard everything in flight (call on a function-level reset)."""
        self.read.responder.flush()
        self.write.sink.flush()

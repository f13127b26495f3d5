"""Backend for the Amaranth simulator: the fast tier, no external simulator needed."""

from amaranth.hdl import Value
from amaranth.sim import Simulator

from nvmecore import CoreConfig, NvmeCore
from nvmetb.amaranth_edges import Driven, EdgeProcess
from nvmetb.model import DoorbellWrite
from nvmetb.packing import Packer

from .harness import PATTERNS, Backend, CheckedCore, Pattern
from .profiling import profiled

__all__ = ["AmaranthBackend", "run_scenario"]


class AmaranthBackend(Backend):
    def __init__(self, core: NvmeCore, pattern: Pattern, seed=0):
        super().__init__(core.config, pattern, seed)
        self.core = core
        self.ctx = None
        self._intx = False
        self._bits = {name: Packer(port.payload.shape())
                      for name, port in (("regs", core.regs.req), ("queue", core.dbg_queue),
                                         ("irq", core.dbg_irq))}
        self._resp_ready = Driven(core.regs.resp.ready)

    # Monitors are steps of one simulator process, sampling at the clock edge.
    def processes(self, dma=True):
        """One process with the monitors (see :meth:`add_monitors`)."""
        edges = EdgeProcess()
        self.add_monitors(edges, dma)
        return [edges.process()]

    def add_monitors(self, edges: EdgeProcess, dma=True):
        """Monitors for the test taps and INTx, and (``dma``) a write sink that records
        MSI-X messages; without it the DMA ports are left to a host memory model."""
        core = self.core
        doorbell_tap = Packer(core.dbg_doorbell.shape())
        event_tap = Packer(core.dbg_event.shape())
        doorbell_valid, event_valid = doorbell_tap.mask("valid"), event_tap.mask("valid")

        def sample_taps(ctx, doorbell, event, intx):
            if doorbell & doorbell_valid:
                p = doorbell_tap.unpack(doorbell).p
                self.doorbells.append(DoorbellWrite(p.qid, bool(p.cq), p.value))
            if event & event_valid:
                self.events.append(event_tap.get(event, "p"))
            self._intx = bool(intx)

        edges.add(sample_taps, core.dbg_doorbell, core.dbg_event, core.intx)
        if not dma:
            return
        width = self.config.data_width
        beats, headers = [], []

        def on_cmd(p):
            headers.append((p.addr, p.length))

        def on_data(p):
            beats.append(p.data)
            if p.last:
                addr, length = headers.pop(0)
                self.dma_writes.append(self.dma_write_from_beats(addr, length, beats, width))
                beats.clear()

        self._accept(edges, core.dma_wr.cmd, on_cmd)
        self._accept(edges, core.dma_wr.data, on_data)

    def _accept(self, edges, stream, record):
        """Take ``stream`` (ready low with the pattern's stall probability) and record
        each payload, unpacked."""
        bits = Packer(stream.payload.shape())
        ready = Driven(stream.ready, 1)

        def step(ctx, valid, payload):
            if valid and ready.value:
                record(bits.unpack(payload))
            ready.set(ctx, not self.stall())
        edges.add(step, stream.valid, stream.payload, init=ready.reset)

    async def _idle(self):
        while self.idle():
            await self.ctx.tick()

    async def _push(self, stream, payload):
        await self._idle()
        self.ctx.set(Value.cast(stream.payload), payload)
        self.ctx.set(stream.valid, 1)
        await self.ctx.tick().until(stream.ready)
        self.ctx.set(stream.valid, 0)

    async def bus_write(self, addr, be, data):
        await self._push(self.core.regs.req, self._bits["regs"].pack(
            addr=addr, write=1, be=be, data=data))

    async def bus_read(self, addr, be):
        regs = self.core.regs
        await self._push(regs.req, self._bits["regs"].pack(addr=addr, write=0, be=be, data=0))
        while True:
            ready = not self.stall()
            self._resp_ready.set(self.ctx, ready)
            _, _, valid, payload = await self.ctx.tick().sample(regs.resp.valid,
                                                                regs.resp.payload)
            if valid and ready:
                self._resp_ready.set(self.ctx, 0)
                return payload

    async def set_cfg(self, msix_enable, msix_function_mask, bus_master_enable=True):
        self.ctx.set(self.core.cfg.msix_enable, msix_enable)
        self.ctx.set(self.core.cfg.msix_function_mask, msix_function_mask)
        self.ctx.set(self.core.cfg.bus_master_enable, bus_master_enable)
        await self.ctx.tick()

    async def queue(self, qid, cq, size):
        await self._push(self.core.dbg_queue, self._bits["queue"].pack(
            qid=qid, cq=int(cq), valid=int(size is not None), size=size or 0))

    async def irq(self, vector, deassert):
        await self._push(self.core.dbg_irq, self._bits["irq"].pack(vector=vector,
                                                                  deassert=int(deassert)))

    async def flr(self):
        self.ctx.set(self.core.cfg.flr, 1)
        await self.ctx.tick()
        self.ctx.set(self.core.cfg.flr, 0)

    async def set_temperature(self, kelvin):
        self.ctx.set(self.core.temperature, kelvin)
        await self.ctx.tick()

    async def wait(self, cycles):
        await self.ctx.tick().repeat(cycles)

    def intx(self):
        return self._intx


def _simulate(core, processes, body, vcd=None):
    """Run ``body(ctx)`` on ``core`` after the power-on MSI-X sweep, with the inputs a
    host leaves set after enumeration (bus mastering on, 512 B read requests, 313 K)."""
    sim = Simulator(core)
    sim.add_clock(4e-9)
    for process in processes:
        sim.add_process(process)

    async def testbench(ctx):
        ctx.set(core.temperature, 313)
        ctx.set(core.cfg.bus_master_enable, 1)
        ctx.set(core.cfg.max_read_request_size, 2)
        await ctx.tick().repeat(core.config.msix_vectors + 4)
        await body(ctx)

    sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()


def run_scenario(scenario, config: CoreConfig | None = None, pattern: Pattern | None = None,
                 seed=0, vcd=None):
    """Run one scenario (an ``async def scenario(core: CheckedCore)``) in the Amaranth
    simulator against the reference model."""
    config = config or CoreConfig(io_queues=4, debug=True)
    core = NvmeCore(config)
    backend = AmaranthBackend(core, pattern or PATTERNS["busy"], seed)
    checked = CheckedCore(backend)

    async def body(ctx):
        backend.ctx = ctx
        with profiled(f"{scenario.__name__}-{backend.pattern.name}-amaranth"):
            await scenario(checked)
            await checked.check()

    _simulate(core, backend.processes(), body, vcd)
    return checked


def ramdisk_image(ctx, ramdisk) -> bytes:
    """The namespace a :class:`~nvmecore.backend.ramdisk.RamDisk` holds, read in the
    simulator: sectors without data read as zeroes, as the RAM disk returns them."""
    beat_bytes = ramdisk.beat_bytes
    out = bytearray(ramdisk.depth * beat_bytes)
    for sector in range(ramdisk.depth // ramdisk.sector_words):
        if not ctx.get(ramdisk.written[sector]):
            continue
        for i in range(sector * ramdisk.sector_words, (sector + 1) * ramdisk.sector_words):
            out[i * beat_bytes:(i + 1) * beat_bytes] = \
                ctx.get(ramdisk.words[i]).to_bytes(beat_bytes, "little")
    return bytes(out)


def run_host_scenario(scenario, config: CoreConfig, dma="fast", seed=0, vcd=None, **kwargs):
    """Run a host scenario (``async def scenario(host, bench, **kwargs)``): the host
    driver on the core with host memory behind its DMA ports, the model in lock step, and
    the RAM disk's namespace compared with the model's at the end."""
    from nvmetb.dma.amaranth_ports import AmaranthDma
    from nvmetb.dma.behaviour import DMA_SETTINGS
    from nvmetb.host import NvmeHost
    from nvmetb.hostmem import HostMemory

    from .transport import BenchTransport

    core = NvmeCore(config)
    backend = AmaranthBackend(core, PATTERNS["fast"], seed)
    memory = HostMemory(max_payload_size=0, max_read_request_size=2)
    dma_ports = AmaranthDma(core.dma_rd, core.dma_wr, memory, DMA_SETTINGS[dma], cfg=core.cfg)
    namespace = None
    if config.backend == "ramdisk":
        async def namespace():
            return ramdisk_image(backend.ctx, core.storage)
    bench = BenchTransport(CheckedCore(backend), memory, namespace=namespace)
    host = NvmeHost(bench, poll_us=0.1, command_timeout_us=200)

    async def body(ctx):
        backend.ctx = ctx
        with profiled(f"{scenario.__name__}-{dma}-amaranth"):
            await scenario(host, bench, **kwargs)
            await bench.compare()

    edges = EdgeProcess()                     # one process for every monitor and driver
    backend.add_monitors(edges, dma=False)
    dma_ports.add_to(edges)
    _simulate(core, [edges.process()], body, vcd)
    return bench

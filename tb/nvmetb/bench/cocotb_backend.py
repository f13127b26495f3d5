# amaranth: UnusedElaboratable=no
"""Backend for cocotb: the generated Verilog under Icarus or Verilator.

Port names follow Amaranth's flattening (``regs__req__valid``, ...); structured payloads
are packed and unpacked with :class:`~nvmetb.packing.Packer` from the shapes of the
core's own ports (:func:`port_shapes`). Streams are sampled at the rising edge, as the
RTL sees them.

:class:`CocotbPorts` is what every cocotb backend shares: the clock, the core's test
ports of a debug build (``dbg_queue``, ``dbg_irq``, ``dbg_doorbell``, ``dbg_event``),
``temperature`` and the INTx level. :class:`CocotbBackend` adds the core's own register
bus, DMA write port and ``cfg`` inputs; ``usp_backend.UspBackend`` puts the core behind
the UltraScale+ adapter instead.

Everything a backend watches at every edge (the taps, INTx, the DMA write port of the
register scenarios, and the DMA port drivers of :func:`run_host_scenario`) is a step of
one :class:`~nvmetb.cocotb_edges.EdgeLoop`, :attr:`CocotbPorts.edges`: one task per
bench, not one per stream.
"""

import logging

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import RisingEdge

from nvmecore import NvmeCore
from nvmecore.nvm_layouts import SECTOR_BYTES
from nvmetb.cocotb_edges import EdgeLoop, Output, reader
from nvmetb.model import DoorbellWrite
from nvmetb.packing import Packer

from .harness import Backend, CheckedCore, Pattern
from .io_report import save_io_stats
from .profiling import CpuMeter, profiled

__all__ = ["CocotbPorts", "CocotbBackend", "port_shapes", "run_scenario",
           "run_host_scenario"]

CLOCK_NS = 4          # 250 MHz


def port_shapes(config):
    """The shape of every port of ``NvmeCore(config)``, by its flattened Verilog name
    (``"regs__req__payload"``: ``RegRequest``, ``"dbg_doorbell"``: the tap's layout).
    The core is built only for its signature, never elaborated (hence the linter option
    on the first line of this file)."""
    members = NvmeCore(config).signature.members
    return {"__".join(path): member.shape for path, member in members.flatten()
            if member.is_port}


class _Stream:
    """A stream the bench drives into the design: ``valid`` and ``payload`` written,
    ``ready`` read."""

    def __init__(self, dut, prefix, shapes):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = reader(getattr(dut, f"{prefix}__ready"))
        self.payload = getattr(dut, f"{prefix}__payload")
        self.bits = Packer(shapes[f"{prefix}__payload"])


class CocotbPorts(Backend):
    """The clock, the test ports and INTx, for any top built from the core.
    ``intx_level()`` reads the INTx output of that top (sampled at every rising edge).

    A debug build's test ports (``config.debug``) are driven and watched; the shipped
    build (no test ports, what a user synthesises) runs everything that goes through the
    host's interface alone: :attr:`taps` is False, so the doorbell and event taps are not
    compared, and :meth:`queue` / :meth:`irq` (register scenarios that create queues or
    raise interrupts directly) fail with a clear error."""

    def __init__(self, dut, config, pattern: Pattern, seed=0, *, clock):
        super().__init__(config, pattern, seed)
        self.dut = dut
        self.clk = clock
        self.log = logging.getLogger("tb")
        self.edges = EdgeLoop(clock)
        self.shapes = shapes = port_shapes(config)
        self.taps = config.debug
        if config.debug:
            self.queue_in = _Stream(dut, "dbg_queue", shapes)
            self.irq_in = _Stream(dut, "dbg_irq", shapes)
            self._doorbell_tap = (reader(dut.dbg_doorbell), Packer(shapes["dbg_doorbell"]))
            self._event_tap = (reader(dut.dbg_event), Packer(shapes["dbg_event"]))
        self._intx = False
        self._tasks = []

    def intx_level(self) -> bool:
        raise NotImplementedError

    def _reset_test_ports(self):
        """Idle values for the test-port inputs, ``temperature`` and ``device_id``."""
        if "dbg_namespace__addr" in self.shapes:
            self.dut.dbg_namespace__addr.value = 0
        names = ("dbg_queue__valid", "dbg_irq__valid") if self.taps else ()
        for name in names + ("device_id",):
            getattr(self.dut, name).value = 0
        self.dut.temperature.value = 313

    def _start_taps(self):
        """Record doorbells, events and the INTx level from now on (and start the edge
        loop)."""
        self.edges.add(self._sample_taps)
        self.edges.start()

    def _sample_taps(self):
        """The valid-only taps (``valid`` and the payload in one packed port) and INTx."""
        self._intx = self.intx_level()
        if not self.taps:
            return
        read, tap = self._doorbell_tap
        value = read()
        if value & tap.mask("valid"):
            p = tap.unpack(value).p
            self.doorbells.append(DoorbellWrite(p.qid, bool(p.cq), p.value))
        read, tap = self._event_tap
        value = read()
        if value & tap.mask("valid"):
            self.events.append(tap.get(value, "p"))

    def stop(self):
        self.edges.stop()
        for task in self._tasks:
            task.cancel()
        self._tasks = []

    async def _push(self, stream, payload):
        while self.idle():
            await RisingEdge(self.clk)
        stream.payload.value = payload
        stream.valid.value = 1
        while True:
            await RisingEdge(self.clk)
            if stream.ready() == 1:
                break
        stream.valid.value = 0

    def _test_port(self, name):
        if not self.taps:
            raise NotImplementedError(
                f"{name}: the shipped build (CoreConfig.debug=False) has no test ports; "
                f"this scenario needs a debug build")

    async def queue(self, qid, cq, size):
        self._test_port("dbg_queue")
        await self._push(self.queue_in, self.queue_in.bits.pack(
            qid=qid, cq=int(cq), valid=int(size is not None), size=size or 0))

    async def irq(self, vector, deassert):
        self._test_port("dbg_irq")
        await self._push(self.irq_in, self.irq_in.bits.pack(vector=vector,
                                                            deassert=int(deassert)))

    async def set_temperature(self, kelvin):
        self.dut.temperature.value = kelvin
        await RisingEdge(self.clk)

    async def wait(self, cycles):
        for _ in range(cycles):
            await RisingEdge(self.clk)

    def intx(self):
        return self._intx


class CocotbBackend(CocotbPorts):
    """The bare NvmeCore: register bus, DMA write port and ``cfg`` driven directly.

    :meth:`wait` counts edges in the edge loop (:meth:`EdgeLoop.wait`): no task of this
    bench but the scenario's and the loop's waits on the clock, so the scenario resumes
    at the same edge and in the same order as with one ``RisingEdge`` per cycle."""

    def __init__(self, dut, config, pattern: Pattern, seed=0):
        super().__init__(dut, config, pattern, seed, clock=dut.clk)
        self.req = _Stream(dut, "regs__req", self.shapes)
        self.resp_valid = reader(dut.regs__resp__valid)
        self.resp_payload = reader(dut.regs__resp__payload)
        self.resp_ready = Output(dut.regs__resp__ready)
        self._intx_level = reader(dut.intx)

    def intx_level(self):
        return self._intx_level() == 1

    async def start(self, dma=True):
        """Reset the core and start the monitors; with ``dma``, a write sink on
        ``dma_wr`` that records every write (MSI-X messages) in :attr:`dma_writes`;
        without it, ``dma_wr`` is left to a host memory model (its ``ready`` low until
        one drives it)."""
        dut = self.dut
        # cocotb's C++ clock: no Python wake-ups for the clock itself (its Python clock
        # costs two per cycle); the edges fall at the same times.
        Clock(self.clk, CLOCK_NS, unit="ns", impl="gpi").start()
        for name in ("regs__req__valid", "cfg__flr", "cfg__msix_enable",
                     "cfg__msix_function_mask", "dma_rd__req__ready", "dma_rd__data__valid"):
            getattr(dut, name).value = 0
        self.resp_ready.set(0)
        if not dma:
            dut.dma_wr__cmd__ready.value = 0
            dut.dma_wr__data__ready.value = 0
        self._reset_test_ports()
        dut.cfg__bus_master_enable.value = 1      # enumeration enabled bus mastering
        dut.cfg__max_payload_size.value = 0
        dut.cfg__max_read_request_size.value = 2
        dut.rst.value = 1
        await self.wait(4)
        dut.rst.value = 0
        self._start_taps()
        if dma:
            self._record_dma_writes()
        # Power-on sweep of the MSI-X table.
        await self.wait(self.config.msix_vectors + 4)

    def _record_dma_writes(self):
        """Take every write on ``dma_wr`` (ready low in a cycle with the pattern's stall
        probability) into :attr:`dma_writes`."""
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

        self.edges.add(self._accept("dma_wr__cmd", on_cmd))
        self.edges.add(self._accept("dma_wr__data", on_data))

    def _accept(self, prefix, record):
        """An edge-loop step that takes stream ``prefix`` and records each payload,
        unpacked."""
        valid = reader(getattr(self.dut, f"{prefix}__valid"))
        payload = reader(getattr(self.dut, f"{prefix}__payload"))
        ready = Output(getattr(self.dut, f"{prefix}__ready"), 1)
        bits = Packer(self.shapes[f"{prefix}__payload"])

        def step():
            if ready.value and valid() == 1:
                record(bits.unpack(payload()))
            ready.set(not self.stall())
        return step

    async def wait(self, cycles):
        await self.edges.wait(cycles)

    async def bus_write(self, addr, be, data_):
        await self._push(self.req, self.req.bits.pack(addr=addr, write=1, be=be, data=data_))

    async def bus_read(self, addr, be):
        await self._push(self.req, self.req.bits.pack(addr=addr, write=0, be=be, data=0))
        while True:
            ready = not self.stall()
            self.resp_ready.set(ready)
            await RisingEdge(self.clk)
            if ready and self.resp_valid() == 1:
                self.resp_ready.set(0)
                return self.resp_payload()

    async def set_cfg(self, msix_enable, msix_function_mask, bus_master_enable=True):
        self.dut.cfg__msix_enable.value = int(msix_enable)
        self.dut.cfg__msix_function_mask.value = int(msix_function_mask)
        self.dut.cfg__bus_master_enable.value = int(bus_master_enable)
        await RisingEdge(self.clk)

    async def flr(self):
        self.dut.cfg__flr.value = 1
        await RisingEdge(self.clk)
        self.dut.cfg__flr.value = 0


def _sim():
    """The simulator's short name ("icarus", "verilator")."""
    return (cocotb.SIM_NAME or "sim").split()[0].lower()


def _cycles(since_ns):
    return round((get_sim_time("ns") - since_ns) / CLOCK_NS)


async def run_scenario(dut, scenario, config, pattern: Pattern, seed=0):
    meter, start_ns = CpuMeter(), get_sim_time("ns")
    backend = CocotbBackend(dut, config, pattern, seed)
    await backend.start()
    core = CheckedCore(backend)
    try:
        with profiled(f"{scenario.__name__}-{pattern.name}-{_sim()}"):
            await scenario(core)
            await core.check()
    finally:
        backend.stop()
    logging.getLogger("tb").info("%s: %d register reads compared, %d doorbells, %d events, "
                                 "%d MSI-X messages; %s", scenario.__name__, core.reads,
                                 len(core.model.doorbells), len(core.model.events),
                                 len(core.model.dma_writes), meter.rate(_cycles(start_ns)))
    return core


async def probe_namespace(dut, config, clock=None) -> bytes:
    """The RAM disk's namespace, read through a debug build's ``dbg_namespace`` port: a
    word per cycle, only the words of sectors that hold data (the rest read as zeroes).
    ``clock``: the design's clock (default ``dut.clk``)."""
    from cocotb.triggers import FallingEdge, ReadOnly

    clock = dut.clk if clock is None else clock
    beat_bytes = config.data_width // 8
    sector_words = max(1, SECTOR_BYTES // beat_bytes)
    addr, word, written = dut.dbg_namespace__addr, dut.dbg_namespace__data, \
        dut.dbg_namespace__written
    out = bytearray(config.namespace_bytes)

    async def read(index):
        await FallingEdge(clock)
        addr.value = index
        await RisingEdge(clock)
        await ReadOnly()
        return int(word.value), int(written.value)

    for sector in range(config.namespace_bytes // SECTOR_BYTES):
        first = sector * sector_words
        value, holds = await read(first)
        if not holds:
            continue
        for index in range(first, first + sector_words):
            if index != first:
                value, _ = await read(index)
            out[index * beat_bytes:(index + 1) * beat_bytes] = value.to_bytes(beat_bytes,
                                                                               "little")
    await FallingEdge(clock)                     # out of the read-only phase
    return bytes(out)


async def run_host_scenario(dut, scenario, config, dma="fast", seed=0, *, namespace=None,
                            fail_namespace=None, started=None, **kwargs):
    """A host scenario (``async def scenario(host, bench, **kwargs)``) on the Verilog: the
    host driver with host memory behind the DMA ports, the model in lock step, and the
    namespace compared with the model's at the end — a debug build's RAM disk through its
    probe, or what ``namespace`` (an async callable) returns. ``fail_namespace(start,
    stop)`` makes the backend fail commands touching those bytes (BenchTransport).
    ``started()`` is called once the clock runs and the reset is over (to attach models
    to other ports)."""
    from nvmetb.dma.behaviour import DMA_SETTINGS
    from nvmetb.dma.cocotb_ports import CocotbDma
    from nvmetb.host import NvmeHost
    from nvmetb.hostmem import HostMemory

    from .harness import PATTERNS
    from .transport import BenchTransport

    meter, start_ns = CpuMeter(), get_sim_time("ns")
    backend = CocotbBackend(dut, config, PATTERNS["fast"], seed)
    memory = HostMemory(max_payload_size=0, max_read_request_size=2)
    dma_ports = CocotbDma(dut, memory, DMA_SETTINGS[dma], width=config.data_width,
                          edges=backend.edges)
    await backend.start(dma=False)
    if started is not None:
        started()
    dma_ports.start()
    if namespace is None and config.backend == "ramdisk" and config.debug:
        async def namespace():
            return await probe_namespace(dut, config)
    bench = BenchTransport(CheckedCore(backend), memory, namespace=namespace,
                           fail_namespace=fail_namespace)
    host = NvmeHost(bench, poll_us=0.1, command_timeout_us=200)
    try:
        with profiled(f"{scenario.__name__}-{dma}-{_sim()}"):
            await scenario(host, bench, **kwargs)
            await bench.compare()
        save_io_stats(host, f"{getattr(scenario, '__name__', 'scenario')}-{dma}")
    finally:
        dma_ports.stop()
        backend.stop()
    logging.getLogger("tb").info(
        "%s: %d CQ entries and %d MSI-X messages compared, %d DMA reads, %d DMA writes; %s",
        scenario.__name__, sum(len(v) for v in bench.core.model.posted.values()),
        len(memory.msix_messages), len(memory.reads), len(memory.writes),
        meter.rate(_cycles(start_ns)))
    return bench

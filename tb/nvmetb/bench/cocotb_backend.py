"""Backend for cocotb: the generated Verilog under Icarus or Verilator.

Port names follow Amaranth's flattening (``regs__req__valid``, ...); structured payloads
are packed and unpacked with the same layouts the gateware uses. Streams are sampled at
the rising edge, as the RTL sees them.

:class:`CocotbPorts` is what every cocotb backend shares: the clock, the core's test
ports of a debug build (``dbg_queue``, ``dbg_irq``, ``dbg_doorbell``, ``dbg_event``),
``temperature`` and the INTx level. :class:`CocotbBackend` adds the core's own register
bus, DMA write port and ``cfg`` inputs; ``usp_backend.UspBackend`` puts the core behind
the UltraScale+ adapter instead.
"""

import logging

import cocotb
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from nvmecore.layouts import (
    AsyncEvent,
    DmaWriteRequest,
    DoorbellUpdate,
    IrqRequest,
    QueueSizeUpdate,
    RegRequest,
)
from nvmetb.model import DoorbellWrite

from .harness import Backend, CheckedCore, Pattern

__all__ = ["CocotbPorts", "CocotbBackend", "run_scenario", "run_host_scenario"]

CLOCK_NS = 4          # 250 MHz


def _unpack(layout, value):
    return data.Layout.cast(layout).from_bits(int(value))


def _pack(layout, fields):
    return data.Layout.cast(layout).const(fields).as_bits()


class _Stream:
    def __init__(self, dut, prefix):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")


class CocotbPorts(Backend):
    """The clock, the test ports and INTx, for any top that carries the core's debug
    ports. ``intx_level()`` reads the INTx output of that top (sampled at every rising
    edge)."""

    def __init__(self, dut, config, pattern: Pattern, seed=0, *, clock):
        super().__init__(config, pattern, seed)
        self.dut = dut
        self.clk = clock
        self.log = logging.getLogger("tb")
        self.queue_in = _Stream(dut, "dbg_queue")
        self.irq_in = _Stream(dut, "dbg_irq")
        self._intx = False
        self._tasks = []

    def intx_level(self) -> bool:
        raise NotImplementedError

    def _reset_test_ports(self):
        """Idle values for the test-port inputs, ``temperature`` and ``device_id``."""
        for name in ("dbg_queue__valid", "dbg_irq__valid", "device_id"):
            getattr(self.dut, name).value = 0
        self.dut.temperature.value = 313

    def _start_taps(self):
        """Record doorbells, events and the INTx level from now on."""
        def on_doorbell(value):
            p = _unpack(DoorbellUpdate, value)
            self.doorbells.append(DoorbellWrite(p.qid, bool(p.cq), p.value))

        self._tasks += [
            cocotb.start_soon(self._tap("dbg_doorbell", on_doorbell)),
            cocotb.start_soon(self._tap(
                "dbg_event", lambda v: self.events.append(_unpack(AsyncEvent, v).as_bits()))),
            cocotb.start_soon(self._intx_monitor()),
        ]

    def stop(self):
        for task in self._tasks:
            task.cancel()
        self._tasks = []

    async def _tap(self, name, record):
        """A valid-only tap: one packed port, ``valid`` in bit 0, the payload above."""
        tap = getattr(self.dut, name)
        while True:
            await RisingEdge(self.clk)
            value = int(tap.value)
            if value & 1:
                record(value >> 1)

    async def _intx_monitor(self):
        while True:
            await RisingEdge(self.clk)
            self._intx = self.intx_level()

    async def _push(self, stream, payload):
        while self.idle():
            await RisingEdge(self.clk)
        stream.payload.value = payload
        stream.valid.value = 1
        while True:
            await RisingEdge(self.clk)
            if stream.ready.value == 1:
                break
        stream.valid.value = 0

    async def queue(self, qid, cq, size):
        await self._push(self.queue_in, _pack(QueueSizeUpdate, {
            "qid": qid, "cq": int(cq), "valid": int(size is not None), "size": size or 0}))

    async def irq(self, vector, deassert):
        await self._push(self.irq_in, _pack(IrqRequest, {"vector": vector,
                                                        "deassert": int(deassert)}))

    async def set_temperature(self, kelvin):
        self.dut.temperature.value = kelvin
        await RisingEdge(self.clk)

    async def wait(self, cycles):
        for _ in range(cycles):
            await RisingEdge(self.clk)

    def intx(self):
        return self._intx


class CocotbBackend(CocotbPorts):
    """The bare NvmeCore: register bus, DMA write port and ``cfg`` driven directly."""

    def __init__(self, dut, config, pattern: Pattern, seed=0):
        super().__init__(dut, config, pattern, seed, clock=dut.clk)
        self.req = _Stream(dut, "regs__req")
        self.resp = _Stream(dut, "regs__resp")

    def intx_level(self):
        return self.dut.intx.value == 1

    async def start(self):
        dut = self.dut
        Clock(self.clk, CLOCK_NS, unit="ns").start()
        for name in ("regs__req__valid", "regs__resp__ready", "cfg__flr", "cfg__msix_enable",
                     "cfg__msix_function_mask", "dma_rd__req__ready", "dma_rd__data__valid"):
            getattr(dut, name).value = 0
        self._reset_test_ports()
        dut.cfg__bus_master_enable.value = 1      # enumeration enabled bus mastering
        dut.cfg__max_payload_size.value = 0
        dut.cfg__max_read_request_size.value = 2
        dut.rst.value = 1
        await self.wait(4)
        dut.rst.value = 0
        beats, headers = [], []

        def on_cmd(value):
            p = _unpack_dma_cmd(value)
            headers.append(p)

        def on_data(value):
            value = int(value)
            width = self.config.data_width
            beats.append(value & ((1 << width) - 1))
            if value >> width & 1:
                addr, length = headers.pop(0)
                self.dma_writes.append(self.dma_write_from_beats(addr, length, beats, width))
                beats.clear()

        self._start_taps()
        self._tasks += [
            cocotb.start_soon(self._monitor(_Stream(dut, "dma_wr__cmd"), on_cmd)),
            cocotb.start_soon(self._monitor(_Stream(dut, "dma_wr__data"), on_data)),
        ]
        # Power-on sweep of the MSI-X table.
        await self.wait(self.config.msix_vectors + 4)

    async def _monitor(self, stream, record):
        stream.ready.value = 1
        while True:
            await RisingEdge(self.clk)
            if stream.valid.value == 1 and stream.ready.value == 1:
                record(stream.payload.value)
            stream.ready.value = 0 if self.stall() else 1

    async def bus_write(self, addr, be, data_):
        await self._push(self.req, _pack(RegRequest, {"addr": addr, "write": 1, "be": be,
                                                      "data": data_}))

    async def bus_read(self, addr, be):
        await self._push(self.req, _pack(RegRequest, {"addr": addr, "write": 0, "be": be,
                                                      "data": 0}))
        while True:
            ready = not self.stall()
            self.resp.ready.value = int(ready)
            await RisingEdge(self.clk)
            if ready and self.resp.valid.value == 1:
                self.resp.ready.value = 0
                return int(self.resp.payload.value)

    async def set_cfg(self, msix_enable, msix_function_mask, bus_master_enable=True):
        self.dut.cfg__msix_enable.value = int(msix_enable)
        self.dut.cfg__msix_function_mask.value = int(msix_function_mask)
        self.dut.cfg__bus_master_enable.value = int(bus_master_enable)
        await RisingEdge(self.clk)

    async def flr(self):
        self.dut.cfg__flr.value = 1
        await RisingEdge(self.clk)
        self.dut.cfg__flr.value = 0


def _unpack_dma_cmd(value):
    p = _unpack(DmaWriteRequest, value)
    return p.addr, p.length


async def run_scenario(dut, scenario, config, pattern: Pattern, seed=0):
    backend = CocotbBackend(dut, config, pattern, seed)
    await backend.start()
    core = CheckedCore(backend)
    try:
        await scenario(core)
        await core.check()
    finally:
        backend.stop()
    logging.getLogger("tb").info("%s: %d register reads compared, %d doorbells, %d events, "
                                 "%d MSI-X messages", scenario.__name__, core.reads,
                                 len(core.model.doorbells), len(core.model.events),
                                 len(core.model.dma_writes))
    return core


async def run_host_scenario(dut, scenario, config, dma="fast", seed=0):
    """A queue scenario (``async def scenario(host, bench)``) on the Verilog: the host
    driver with host memory behind the DMA ports, the model in lock step."""
    from nvmetb.dma.behaviour import DMA_SETTINGS
    from nvmetb.dma.cocotb_ports import CocotbDma
    from nvmetb.host import NvmeHost
    from nvmetb.hostmem import HostMemory

    from .harness import PATTERNS
    from .transport import BenchTransport

    backend = CocotbBackend(dut, config, PATTERNS["fast"], seed)
    memory = HostMemory(max_payload_size=0, max_read_request_size=2)
    dma_ports = CocotbDma(dut, memory, DMA_SETTINGS[dma], width=config.data_width)
    await backend.start()
    dma_ports.start()
    bench = BenchTransport(CheckedCore(backend), memory)
    host = NvmeHost(bench, poll_us=0.1, command_timeout_us=200)
    try:
        await scenario(host, bench)
        await bench.compare()
    finally:
        dma_ports.stop()
        backend.stop()
    logging.getLogger("tb").info(
        "%s: %d CQ entries and %d MSI-X messages compared, %d DMA reads, %d DMA writes",
        scenario.__name__, sum(len(v) for v in bench.core.model.posted.values()),
        len(memory.msix_messages), len(memory.reads), len(memory.writes))
    return bench

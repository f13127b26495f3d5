"""nvmecore's Verilog as the PCI function behind QEMU's proxy device, served from cocotb.

:class:`ProxyDevice` answers the mpqemu link (:mod:`.mpqemu`) from one coroutine,
:meth:`ProxyDevice.serve`, through a port: :class:`CorePort`, the core's own ports (the
shipped build, no test ports), or :class:`UspPort`, the FPGA top behind the adapter
bench's models of the UltraScale+ hard IP. What it does:

- configuration space: :class:`~.mpqemu.ConfigSpace` (bus master enable goes to
  ``cfg.bus_master_enable``);
- BAR_READ / BAR_WRITE: offset = address modulo ``BAR0_SIZE``, one register-bus request
  (or one memory TLP) per access (byte enables from offset and size, never crossing a
  QWORD); a read is answered with the core's response, a write once the core (or CQ)
  took the request;
- DMA: ``dma_rd`` / ``dma_wr`` (or RQ / RC) served from the guest's shared RAM
  (:class:`GuestMemory`: the PCIe request rules of
  :class:`~nvmetb.hostmem.HostMemory` checked on every access, and an access outside
  guest RAM or without bus mastering is a violation);
- INTx: each rising edge of ``intx`` or of the INTx message level (INTx not disabled in
  the command register) signals
  the irqfd; a resample (the guest's EOI) with ``intx`` still high signals it again.

Between messages the simulation runs flat out while the core is busy (DMA in flight or
within ``idle_cycles`` of the last activity); when it is not, it runs ``idle_chunk``
cycles per ``idle_sleep`` seconds of waiting on the socket, because the core may work
for a long time without touching DMA (Format NVM zeroing the namespace) while the guest,
polling its CQ in memory, sends nothing.
Every BAR access goes to ``trace`` (a text file: simulated cycle, wall clock, R/W,
offset, size, value); every admin command the core fetches and every admin completion it
posts to ``admin_trace`` (:class:`AdminTrace`).
"""

import logging
import os
import select
import struct
import time
from dataclasses import dataclass, field

from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import RisingEdge

from nvmecore.layouts import (
    BAR0_SIZE,
    AdminOpcode,
    Aqa,
    Cc,
    Cqe,
    Csts,
    Reg,
    RegRequest,
    ShnType,
    ShstState,
    Sqe,
)
from nvmetb.cocotb_edges import EdgeLoop, Output, reader
from nvmetb.dma.behaviour import DmaSettings
from nvmetb.dma.cocotb_ports import CocotbDma
from nvmetb.hostmem import HostMemory
from nvmetb.packing import Packer

from .mpqemu import BAR, CONF, Cmd, ConfigSpace, GuestRam, Link

__all__ = ["GuestMemory", "ProxyDevice", "DeviceStats", "CorePort", "UspPort", "CLOCK_NS"]

CLOCK_NS = 4
#: PCIe encodings of max payload size (256 B) and max read request size (512 B): what a
#: root port typically sets (there is no PCIe capability for the guest to change them).
MAX_PAYLOAD_SIZE = 1
MAX_READ_REQUEST_SIZE = 2

log = logging.getLogger("tb")

_REQ = Packer(RegRequest)
_CC = Packer(Cc)
_CSTS = Packer(Csts)
_AQA = Packer(Aqa)
_SQE = data.Layout.cast(Sqe)
_CQE = data.Layout.cast(Cqe)
SQE_BYTES = _SQE.size // 8
CQE_BYTES = _CQE.size // 8


class AdminTrace:
    """The admin queue pair as the core sees it: every submission entry it fetches and
    every completion it posts (from the DMA in guest RAM), one line each, and the
    completions with a non-zero status kept in :attr:`errors`."""

    def __init__(self, out):
        self.out = out
        self.regs = {}             # 32-bit BAR0 registers below the doorbells, as written
        self.errors = []           # (command, completion) line pairs
        self._by_cid = {}
        self.commands = 0

    def write_reg(self, offset, value, size):
        for i in range(0, size, 4):
            if offset + i < 0x40:
                self.regs[offset + i] = value >> 8 * i & 0xFFFF_FFFF

    def _queue(self, base_reg, size_field):
        base = self.regs.get(base_reg, 0) | self.regs.get(base_reg + 4, 0) << 32
        return base, getattr(_AQA.unpack(self.regs.get(Reg.AQA, 0)), size_field) + 1

    def observe(self, op, addr, payload, cycle):
        if op == "read":
            base, entries = self._queue(Reg.ASQ, "asqs")
            stride = SQE_BYTES
        else:
            base, entries = self._queue(Reg.ACQ, "acqs")
            stride = CQE_BYTES
        end = base + entries * stride
        if not base or not base <= addr < end:
            return
        for at in range(addr - (addr - base) % stride, addr + len(payload), stride):
            chunk = payload[at - addr:at - addr + stride]
            if at < addr or len(chunk) < stride:
                continue
            bits = int.from_bytes(chunk, "little")
            if op == "read":
                self._sqe(_SQE.from_bits(bits), cycle)
            else:
                self._cqe(_CQE.from_bits(bits), cycle)

    def _sqe(self, e, cycle):
        self.commands += 1
        opc = int(e.cdw0.opc)
        try:
            name = AdminOpcode(opc).name
        except ValueError:
            name = f"opcode {opc:#04x}"
        line = (f"{cycle} SQE cid={int(e.cdw0.cid):#06x} {name} nsid={int(e.nsid):#x} "
                f"cdw10={int(e.cdw10):#010x} cdw11={int(e.cdw11):#010x} prp1={int(e.prp1):#x}")
        self._by_cid[int(e.cdw0.cid)] = line
        self.out.write(line + "\n")

    def _cqe(self, c, cycle):
        status = c.status
        sct, sc = status.sct.value, int(status.sc)
        line = (f"{cycle} CQE cid={int(c.cid):#06x} sct={sct} sc={sc:#04x} "
                f"dnr={int(status.dnr)} dw0={int(c.dw0):#010x} sqhd={int(c.dw2.sqhd)}")
        self.out.write(line + "\n")
        if sct or sc:
            self.errors.append((self._by_cid.get(int(c.cid), "?"), line))


class GuestMemory(HostMemory):
    """Host memory for the DMA port drivers: the guest's RAM. Every access is checked as
    :class:`HostMemory` checks it (length, 4 KiB boundary, MPS / MRRS); one outside guest
    RAM, or made while bus mastering is off, is a violation (a read of it fails)."""

    def __init__(self, ram: GuestRam, bus_master):
        super().__init__(max_payload_size=MAX_PAYLOAD_SIZE,
                         max_read_request_size=MAX_READ_REQUEST_SIZE)
        self.ram = ram
        self.bus_master = bus_master
        self.read_bytes = self.write_bytes = self.read_count = self.write_count = 0

    def _allowed(self, op, addr, length):
        if not self.bus_master():
            self._violation("unmapped", op, addr, length, "bus mastering is disabled")
            return False
        if not self.ram.contains(addr, length):
            self._violation("unmapped", op, addr, length, "not guest RAM")
            return False
        return True

    #: ``observe(op, addr, data)``: called with every access that reached guest RAM.
    observe = None

    def device_read(self, addr, length, max_read_request_size=None):
        self._check_request("read", addr, length, MAX_READ_REQUEST_SIZE
                            if max_read_request_size is None else max_read_request_size)
        self.read_count += 1
        self.read_bytes += length
        if not self._allowed("read", addr, length):
            return bytes(length), True
        data = self.ram.read(addr, length)
        if self.observe is not None:
            self.observe("read", addr, data)
        return data, False

    def device_write(self, addr, data, max_payload_size=None):
        self._check_request("write", addr, len(data), MAX_PAYLOAD_SIZE
                            if max_payload_size is None else max_payload_size)
        self.write_count += 1
        self.write_bytes += len(data)
        if self._allowed("write", addr, len(data)):
            self.ram.write(addr, bytes(data))
            if self.observe is not None:
                self.observe("write", addr, data)


@dataclass
class DeviceStats:
    bar_reads: int = 0
    bar_writes: int = 0
    config_reads: int = 0
    config_writes: int = 0
    resets: int = 0
    intx_edges: int = 0
    shutdowns: list = field(default_factory=list)    # cycle of each CC.SHN write
    shutdown_complete: list = field(default_factory=list)   # cycle of each SHST=complete
    enables: int = 0


class CorePort:
    """The bare core's own ports (a shipped build): register bus, ``dma_rd`` / ``dma_wr``
    served by :class:`~nvmetb.dma.cocotb_ports.CocotbDma`, ``cfg`` driven, ``intx``
    read. ``read`` / ``write`` take a QWORD address, byte enables and QWORD-placed data,
    as the register bus does."""

    def __init__(self, dut, config, memory, device_id):
        self.dut = dut
        self.config = config
        self.device_id = device_id
        self.edges = EdgeLoop(dut.clk)
        self.dma = CocotbDma(dut, memory, DmaSettings(read_latency=1),
                             width=config.data_width, edges=self.edges)
        self._req_valid = dut.regs__req__valid
        self._req_payload = dut.regs__req__payload
        self._req_ready = reader(dut.regs__req__ready)
        self._resp_valid = reader(dut.regs__resp__valid)
        self._resp_payload = reader(dut.regs__resp__payload)
        self._intx = reader(dut.intx)
        self._rst = reader(dut.rst)
        self._bme = Output(dut.cfg__bus_master_enable, 0)
        self._responses = []
        self._pushing = False
        self._intx_level = False

    async def start(self):
        dut = self.dut
        # cocotb's C++ clock: no Python wake-ups for the clock itself.
        Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
        for name in ("regs__req__valid", "cfg__flr", "cfg__msix_enable",
                     "cfg__msix_function_mask"):
            getattr(dut, name).value = 0
        dut.device_id.value = self.device_id
        dut.regs__resp__ready.value = 1
        dut.temperature.value = 313
        dut.cfg__max_payload_size.value = MAX_PAYLOAD_SIZE
        dut.cfg__max_read_request_size.value = MAX_READ_REQUEST_SIZE
        dut.rst.value = 1
        self.edges.add(self._sample)
        self.edges.start()
        self.dma.start()
        await self.reset()

    async def reset(self):
        """The function's reset (DEVICE_RESET): the core's ``rst``."""
        self._bme.set(0)
        self.dut.rst.value = 1
        await self.edges.wait(4)
        self.dut.rst.value = 0
        self.dma.flush()
        self._responses.clear()
        await self.edges.wait(self.config.msix_vectors + 4)     # the MSI-X table sweep

    def _sample(self):
        """Edge step: register-bus responses (``ready`` held high) and INTx; nothing in
        reset (outputs may still be X under Icarus)."""
        if self._rst() == 1:
            return
        if self._resp_valid():
            self._responses.append(self._resp_payload())
        self._intx_level = self._intx() == 1

    def intx(self):
        return self._intx_level

    def busy(self):
        rd, wr = self.dma.read.responder, self.dma.write.sink
        return bool(rd.outstanding or not wr.idle or self._pushing)

    async def set_bus_master(self, enable):
        self._bme.set(enable)

    async def _push(self, payload):
        self._pushing = True
        self._req_payload.value = payload
        self._req_valid.value = 1
        while True:
            await RisingEdge(self.dut.clk)
            if self._req_ready() == 1:
                break
        self._req_valid.value = 0
        self._pushing = False

    async def read(self, qword, be):
        await self._push(_REQ.pack(addr=qword, write=0, be=be, data=0))
        while not self._responses:
            await self.edges.wait(1)
        return self._responses.pop(0)

    async def write(self, qword, be, value):
        await self._push(_REQ.pack(addr=qword, write=1, be=be, data=value))

    def stop(self):
        self.dma.stop()
        self.edges.stop()

    def check(self):
        pass


class UspPort:
    """The FPGA top (``nvmecore_usp``, a debug build): BAR0 accesses as TLPs on CQ with
    their completions checked on CC, DMA on RQ / RC, configuration, INTx messages and FLR
    as the hard IP does them: the adapter bench's own models
    (:class:`~nvmetb.bench.usp_backend.UspBackend`,
    :class:`~nvmetb.dma.usp_ports.UspDma`) over guest RAM. DEVICE_RESET is a
    function-level reset."""

    def __init__(self, dut, config, memory, device_id):
        from nvmetb.bench.harness import PATTERNS
        from nvmetb.bench.usp_backend import UspBackend, _usp_dma
        from nvmetb.dma.usp_ports import UspDmaSettings

        self.dut = dut
        self.config = config
        self.device_id = device_id
        self.backend = UspBackend(dut, config, PATTERNS["fast"], ext_tag=True,
                                  max_payload_size=MAX_PAYLOAD_SIZE,
                                  max_read_request_size=MAX_READ_REQUEST_SIZE)
        self.dma = _usp_dma(dut, self.backend, memory, UspDmaSettings(), config)
        self.edges = self.backend.edges
        self._bme = None

    async def start(self):
        await self.backend.start()
        self.dut.device_id.value = self.device_id
        self.dma.start()
        await self.set_bus_master(False)

    async def reset(self):
        await self.set_bus_master(False)
        await self.backend.flr()
        await self.edges.wait(self.config.msix_vectors + 4)

    def intx(self):
        return self.backend.intx_level()

    def busy(self):
        d = self.dma
        return bool(d._pending or d._outstanding or d._unanswered)

    async def set_bus_master(self, enable):
        if bool(enable) != self._bme:
            self._bme = bool(enable)
            await self.backend.set_cfg(False, False, bus_master_enable=self._bme)

    async def read(self, qword, be):
        return await self.backend.bus_read(qword, be)

    async def write(self, qword, be, value):
        await self.backend.bus_write(qword, be, value)

    def stop(self):
        self.dma.stop()
        self.backend.stop()

    def check(self):
        """Fail if the design broke a rule of the hard IP (CC, cfg ports, INTx)."""
        self.backend.check()


PORTS = {"core": CorePort, "usp": UspPort}


class ProxyDevice:
    def __init__(self, dut, config, link: Link, *, top="core", trace=None, admin_trace=None,
                 device_id=0, idle_cycles=4096, chunk_cycles=32, idle_chunk=256,
                 idle_sleep=0.002):
        self.dut = dut
        self.config = config
        self.link = link
        self.trace = trace
        self.idle_cycles = idle_cycles
        self.chunk_cycles = chunk_cycles
        self.idle_chunk = idle_chunk
        self.idle_sleep = idle_sleep
        self.ram = GuestRam()
        self.cfg = ConfigSpace(config.pci_vendor_id, config.pci_device_id,
                               config.pci_subsystem_vendor_id, config.pci_subsystem_id)
        self.memory = GuestMemory(self.ram, lambda: self.cfg.bus_master)
        self.port = PORTS[top](dut, config, self.memory, device_id)
        self.edges = self.port.edges
        self.stats = DeviceStats()
        self.admin = AdminTrace(admin_trace) if admin_trace is not None else None
        if self.admin is not None:
            self.memory.observe = lambda op, addr, payload: self.admin.observe(
                op, addr, payload, self.cycles())
        self.irqfd = self.resamplefd = None
        self._intx_level = False
        self._last_cc = 0

    # -- set-up -------------------------------------------------------------------------

    async def start(self):
        await self.port.start()
        self.edges.add(self._sample)

    @staticmethod
    def cycles():
        return int(get_sim_time("ns")) // CLOCK_NS

    def _sample(self):
        """Edge step: INTx as the port sees it (the core's pin, or the INTx messages the
        hard IP sent)."""
        level = self.port.intx()
        if level != self._intx_level:
            self._intx_level = self.cfg.intx = level
            if level:
                self.stats.intx_edges += 1
                self._signal_irq()

    def _signal_irq(self):
        if self.irqfd is not None and self.cfg.intx_enabled:
            os.write(self.irqfd, struct.pack("<Q", 1))

    # -- serving --------------------------------------------------------------------------

    async def serve(self, alive):
        """Answer the link until EOF, or until ``alive()`` turns false while idle."""
        last_activity = self.cycles()
        seen = (0, 0)
        while True:
            now = self.cycles()
            counts = (self.memory.read_count, self.memory.write_count)
            if counts != seen or self.port.busy():
                seen, last_activity = counts, now
            idle = now - last_activity > self.idle_cycles
            waiting = [self.link.sock] + ([self.resamplefd] if self.resamplefd else [])
            ready = select.select(waiting, [], [], self.idle_sleep if idle else 0)[0]
            if self.resamplefd is not None and self.resamplefd in ready:
                self._resample()
            if self.link.sock not in ready:
                if idle and not alive():
                    return
                await self.edges.wait(self.idle_chunk if idle else self.chunk_cycles)
                continue
            msg = self.link.receive()
            if msg is None:
                return
            await self._handle(msg)
            last_activity = self.cycles()

    def _resample(self):
        """The guest ended the interrupt (EOI): signal again if INTx is still high."""
        try:
            os.read(self.resamplefd, 8)
        except BlockingIOError:
            return
        if self._intx_level:
            self._signal_irq()

    async def _handle(self, msg):
        if msg.cmd == Cmd.SYNC_SYSMEM:
            self.ram.sync(msg)
            log.debug("guest RAM: %s", ", ".join(f"{g:#x}+{s:#x}" for g, s in self.ram.regions))
        elif msg.cmd == Cmd.SET_IRQFD:
            for fd in (self.irqfd, self.resamplefd):
                if fd is not None:
                    os.close(fd)
            self.irqfd, self.resamplefd = (msg.fds + [None, None])[:2]
            if self.resamplefd is not None:
                os.set_blocking(self.resamplefd, False)
        elif msg.cmd == Cmd.PCI_CFGREAD:
            addr, _, length = CONF.unpack_from(msg.payload)
            self.stats.config_reads += 1
            self.link.reply(self.cfg.read(addr, length))
        elif msg.cmd == Cmd.PCI_CFGWRITE:
            addr, value, length = CONF.unpack_from(msg.payload)
            self.stats.config_writes += 1
            self.cfg.write(addr, value, length)
            await self.port.set_bus_master(self.cfg.bus_master)
            self.link.reply(0)
        elif msg.cmd == Cmd.BAR_READ:
            addr, _, size, _memory = BAR.unpack_from(msg.payload)
            value = await self.bar_read(addr % BAR0_SIZE, size)
            self.link.reply(value)
        elif msg.cmd == Cmd.BAR_WRITE:
            addr, value, size, _memory = BAR.unpack_from(msg.payload)
            await self.bar_write(addr % BAR0_SIZE, value, size)
            self.link.reply(0)
        elif msg.cmd == Cmd.DEVICE_RESET:
            self.stats.resets += 1
            log.info("mpqemu: device reset")
            self.cfg.reset()
            await self.port.reset()
            self.link.reply(0)
        else:
            raise AssertionError(f"mpqemu: unexpected message {msg.cmd.name}")

    # -- register bus -------------------------------------------------------------------

    @staticmethod
    def _lane(offset, size):
        if size not in (1, 2, 4, 8) or offset % size:
            raise AssertionError(f"BAR0 access of {size} B at {offset:#x}: not naturally "
                                 "aligned (the proxy splits nothing)")
        shift = offset % 8
        return offset - shift, ((1 << size) - 1) << shift, 8 * shift

    async def bar_read(self, offset, size):
        qword, be, shift = self._lane(offset, size)
        value = await self.port.read(qword, be) >> shift & ((1 << 8 * size) - 1)
        self.stats.bar_reads += 1
        self._note("R", offset, size, value)
        if offset == Reg.CSTS and size >= 4:
            if _CSTS.unpack(value & 0xFFFF_FFFF).shst == ShstState.COMPLETE and \
                    _CC.unpack(self._last_cc).shn != ShnType.NONE:
                self.stats.shutdown_complete.append(self.cycles())
        return value

    async def bar_write(self, offset, value, size):
        qword, be, shift = self._lane(offset, size)
        await self.port.write(qword, be, (value & ((1 << 8 * size) - 1)) << shift)
        self.stats.bar_writes += 1
        self._note("W", offset, size, value)
        if self.admin is not None:
            self.admin.write_reg(offset, value, size)
        if offset == Reg.CC and size == 4 or offset == Reg.CC - 4 and size == 8:
            cc = value if size == 4 else value >> 32
            cc &= 0xFFFF_FFFF
            old, self._last_cc = _CC.unpack(self._last_cc), cc
            new = _CC.unpack(cc)
            if new.shn != ShnType.NONE and old.shn == ShnType.NONE:
                self.stats.shutdowns.append(self.cycles())
            if new.en and not old.en:
                self.stats.enables += 1

    def _note(self, op, offset, size, value):
        if self.trace is not None:
            self.trace.write(f"{self.cycles()} {time.monotonic():.4f} {op} {offset:#06x} "
                             f"{size} {value:#x}\n")

    def close(self):
        self.port.stop()
        self.ram.close()
        for fd in (self.irqfd, self.resamplefd):
            if fd is not None:
                os.close(fd)

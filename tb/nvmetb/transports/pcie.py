"""The host driver's transport over a PCIe link: cocotbext-pcie's root complex and its
UltraScale+ hard-IP model wrapping the generated ``UspTop`` (DESIGN.md §7, layer 3).

:class:`PcieStack` builds the link on a cocotb DUT: a ``RootComplex``, an
``UltraScalePlusPcieDevice`` configured as DESIGN.md §10 says (class code 01 08 02, BAR0
64-bit 16 KiB, MSI-X table in BAR0 at 0x2000 and PBA at 0x3000, no MSI), host memory
(a :class:`~nvmetb.hostmem.HostMemory`) mapped into the root complex's address
space below and above 4 GiB, and an extra MSI-X message region above 4 GiB. It enumerates
the device, enables it, and lets the root complex allocate (and write) every MSI-X
vector.

:class:`LinkChecker` watches every TLP the device sends and every completion it gets
(and :class:`~nvmetb.usp.monitor.BeatMonitor` every RQ and CC beat: ``tvalid`` held from
a TLP's first beat to its last, framing as the hard IP reads it): no request crosses
4 KiB, none exceeds max payload size or max read request size, a read tag is never
reused while outstanding (and is < 32 without extended tags), and every interrupt
message follows, on the link, the CQ entry write it announces.

:class:`PcieTransport` is the :class:`~nvmetb.host.transport.Transport`: BAR0 through
memory TLPs, configuration through configuration TLPs, interrupts as the messages that
reach the root complex's MSI-X vectors (or the high region).
"""

import logging
import re

from cocotb.triggers import Timer
from cocotbext.axi import AxiStreamBus
from cocotbext.axi.address_space import Region
from cocotbext.pcie.core import RootComplex
from cocotbext.pcie.core.caps import PciCapId
from cocotbext.pcie.core.tlp import CplStatus, TlpType
from cocotbext.pcie.xilinx.us import UltraScalePlusPcieDevice

from nvmecore.layouts import BAR0_SIZE, MSIX_PBA_BASE, MSIX_TABLE_BASE
from nvmecore.top import usp_ports
from nvmetb.host.transport import HostMemoryTransport
from nvmetb.hostmem import HostMemory, pcie_size_bytes
from nvmetb.usp.cq import CcParser
from nvmetb.usp.intx import IntxLink
from nvmetb.usp.monitor import BeatMonitor
from nvmetb.usp.rq import RqParser

__all__ = ["PcieStack", "PcieTransport", "LinkChecker", "LinkStats"]

log = logging.getLogger("tb")

NVME_CLASS_CODE = 0x010802            # mass storage / NVM / NVMe [DESIGN.md §10]
# The root complex keeps 0..2 GiB for its own pool, its MSI region at 2 GiB and BARs from
# 3 GiB; host memory for the driver goes between, and above 4 GiB.
LOW_REGION = (0x9000_0000, 0x3000_0000)
HIGH_REGION = (HostMemory.HIGH_BASE, 1 << 32)
HIGH_MSIX_BASE = 0x0002_0000_0000_0000            # MSI-X messages above 4 GiB
HIGH_MSIX_DATA = 0x4D58_0000

#: Ports of the top the stack drives itself rather than through the hard-IP model.
OWN_PORTS = {"pcie_tfc_nph_av", "cfg_interrupt_sent"}

_READS = {TlpType.MEM_READ, TlpType.MEM_READ_64}
_WRITES = {TlpType.MEM_WRITE, TlpType.MEM_WRITE_64}
_COMPLETIONS = {TlpType.CPL, TlpType.CPL_DATA}


class _LinkMemory(HostMemory):
    LOW_BASE = LOW_REGION[0]


class _HostRegion(Region):
    """A window of :class:`HostMemory` in the root complex's address space: device reads
    and writes go through HostMemory's own checks (buffers, guard gaps)."""

    def __init__(self, memory: HostMemory, base, size, limits):
        super().__init__(size)
        self.memory = memory
        self.offset = base
        self.limits = limits            # () -> (max payload, max read request) encodings

    async def _read(self, address, length, **kwargs):
        data, error = self.memory.device_read(self.offset + address, length,
                                              self.limits()[1])
        if error:
            raise OSError(f"read of {length} B at {self.offset + address:#x} fails")
        return data

    async def _write(self, address, data, **kwargs):
        self.memory.device_write(self.offset + address, data, self.limits()[0])


class _MsixRegion(Region):
    """Message addresses above 4 GiB: every DWORD written is an interrupt message."""

    def __init__(self, record, size=0x10000):
        super().__init__(size)
        self.record = record

    async def _read(self, address, length, **kwargs):
        return bytes(length)

    async def _write(self, address, data, **kwargs):
        self.record(HIGH_MSIX_BASE + address, int.from_bytes(data, "little"))


class LinkStats:
    """TLP counts on the link, by kind."""

    def __init__(self):
        self.counts = {}

    def add(self, kind):
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def __str__(self):
        return ", ".join(f"{v} {k}" for k, v in sorted(self.counts.items()))


class LinkChecker:
    """Rules every TLP from the device must keep, checked where the device meets the
    link; breaches are collected in :attr:`violations`."""

    def __init__(self, stack):
        self.stack = stack
        self.violations = []
        self.outstanding = set()
        self.sequence = []              # ("cqe", addr) / ("msi", addr, data), in link order
        self.stats = LinkStats()
        dev = stack.dev
        send, recv = dev.send, dev.upstream_port.rx_handler

        async def checked_send(tlp):
            self.on_device_tlp(tlp)
            await send(tlp)

        async def checked_recv(tlp):
            self.on_host_tlp(tlp)
            await recv(tlp)

        dev.send = checked_send
        dev.upstream_port.rx_handler = checked_recv

    def _violation(self, what, tlp):
        log.error("link: %s: %r", what, tlp)
        self.violations.append(f"{what}: {tlp!r}")

    def on_device_tlp(self, tlp):
        pcie = self.stack.dev.functions[0].pcie_cap
        if tlp.fmt_type in _READS | _WRITES:
            read = tlp.fmt_type in _READS
            self.stats.add("memory read" if read else "memory write")
            length = tlp.length * 4
            if (tlp.address & 0xFFF) + length > 0x1000:
                self._violation("request crosses a 4 KiB boundary", tlp)
            limit = pcie_size_bytes(pcie.max_read_request_size if read
                                    else pcie.max_payload_size)
            if length > limit:
                self._violation(f"request longer than {limit} B", tlp)
            if read:
                tags = 256 if pcie.extended_tag_field_enable else 32
                if tlp.tag >= tags:
                    self._violation(f"tag {tlp.tag} beyond the {tags} allowed", tlp)
                if tlp.tag in self.outstanding:
                    self._violation(f"tag {tlp.tag} reused while outstanding", tlp)
                self.outstanding.add(tlp.tag)
            else:
                self._log_write(tlp)
        elif tlp.fmt_type in _COMPLETIONS:
            self.stats.add("completion (of a register read)")
        else:
            self.stats.add(str(tlp.fmt_type))

    def on_host_tlp(self, tlp):
        if tlp.fmt_type in _COMPLETIONS:
            self.stats.add("completion (of a DMA read)")
            last = tlp.byte_count <= tlp.length * 4 - (tlp.lower_address & 3)
            if tlp.status != CplStatus.SC or last:
                self.outstanding.discard(tlp.tag)
        elif tlp.fmt_type in _READS:
            self.stats.add("register read")
        elif tlp.fmt_type in _WRITES:
            self.stats.add("register write")
        else:
            self.stats.add("configuration")

    def _log_write(self, tlp):
        addr = tlp.address
        if self.stack.is_msix(addr):
            data = int.from_bytes(bytes(tlp.data[:4]), "little")
            self.sequence.append(("msi", addr, data))
        elif tlp.length * 4 == 16:
            self.sequence.append(("cqe", addr))

    def check_interrupt_order(self, cq_vectors):
        """Every MSI-X message announces at least one CQ entry of its vector that is
        already on the link ahead of it: at any point, a vector has had no more messages
        than CQ entries written. ``cq_vectors``: [(base, end, vector)]."""
        entries, messages = {}, {}
        for item in self.sequence:
            if item[0] == "cqe":
                for base, end, vector in cq_vectors:
                    if base <= item[1] < end:
                        entries[vector] = entries.get(vector, 0) + 1
            else:
                vector = self.stack.transport.msix_vector_of(item[1], item[2])
                messages[vector] = messages.get(vector, 0) + 1
                if messages[vector] > entries.get(vector, 0):
                    self.violations.append(
                        f"MSI-X message {messages[vector]} for vector {vector} with only "
                        f"{entries.get(vector, 0)} CQ entries before it")


class PcieStack:
    """Root complex + UltraScale+ hard-IP model around a ``UspTop`` DUT."""

    def __init__(self, dut, config, *, straddle=True, extended_tags=True,
                 max_payload_size=1, max_read_request_size=2):
        self.dut = dut
        self.config = config
        width = len(dut.s_axis_rq_tdata)
        self.width = width
        self.rc = RootComplex()
        self.rc.max_payload_size = max_payload_size
        self.rc.max_read_request_size = max_read_request_size
        self.memory = _LinkMemory(max_payload_size=max_payload_size,
                                  max_read_request_size=max_read_request_size)
        # Inputs of the DUT that the hard-IP model leaves undriven.
        dut.cfg_flr_in_process.value = 0
        dut.device_id.value = 0x0123_4567_89AB_CDEF
        dut.temperature.value = 313
        # The top's sideband ports go to the model's arguments of the same name (PG213's);
        # the four streams go as buses.
        ports = {name: getattr(dut, name) for name in usp_ports(width)
                 if not name.startswith(("s_axis_", "m_axis_")) and name not in OWN_PORTS}
        # cocotbext-pcie 0.2.16 never starts the task that drives pcie_tfc_nph_av (it
        # would stay 0: no non-posted credit, no read ever sent); its link has no credit
        # limit, so the stack shows "15 or more" [PG213].
        dut.pcie_tfc_nph_av.value = 0xF
        self.dev = UltraScalePlusPcieDevice(
            pcie_generation=3 if width == 256 else 4,
            pcie_link_width=8,
            user_clk_frequency=250e6,
            alignment="dword",
            rc_straddle=straddle,
            rc_4tlp_straddle=straddle and width == 512,
            rq_straddle=width == 512,
            max_payload_size=1024,
            enable_client_tag=True,
            enable_extended_tag=extended_tags,
            pf0_msi_enable=False,
            pf0_msix_enable=True,
            pf0_msix_table_size=config.msix_vectors - 1,
            pf0_msix_table_bir=0,
            pf0_msix_table_offset=MSIX_TABLE_BASE,
            pf0_msix_pba_bir=0,
            pf0_msix_pba_offset=MSIX_PBA_BASE,
            rq_bus=AxiStreamBus.from_prefix(dut, "s_axis_rq"),
            rc_bus=AxiStreamBus.from_prefix(dut, "m_axis_rc"),
            cq_bus=AxiStreamBus.from_prefix(dut, "m_axis_cq"),
            cc_bus=AxiStreamBus.from_prefix(dut, "s_axis_cc"),
            **ports,
        )
        function = self.dev.functions[0]
        function.vendor_id = config.pci_vendor_id
        function.device_id = config.pci_device_id
        function.subsystem_vendor_id = config.pci_subsystem_vendor_id
        function.subsystem_id = config.pci_subsystem_id
        function.class_code = NVME_CLASS_CODE
        function.configure_bar(0, BAR0_SIZE, ext=True, prefetch=False)
        self.rc.make_port().connect(self.dev)

        limits = self._limits
        space = self.rc.mem_address_space
        for base, size in (LOW_REGION, HIGH_REGION):
            space.register_region(_HostRegion(self.memory, base, size, limits), base)
        self.messages = []                     # (address, data) in arrival order
        space.register_region(_MsixRegion(self._record), HIGH_MSIX_BASE)
        msi = self.rc.msi_region
        msi_write = msi.write

        async def record_rc_message(addr, data, **kwargs):
            self._record(msi.get_absolute_address(addr), int.from_bytes(data, "little"))
            await msi_write(addr, data, **kwargs)

        msi.write = record_rc_message
        self.link = LinkChecker(self)
        # RQ and CC beat by beat: tvalid held for a whole TLP, framing as the hard IP reads
        # it (cocotbext-pcie's model accepts a TLP with gaps; the hard IP nullifies it).
        self.monitors = [
            BeatMonitor(dut, "s_axis_rq", lambda: RqParser(width, straddle=width == 512),
                        violations=self.link.violations).start(),
            BeatMonitor(dut, "s_axis_cc", lambda: CcParser(width),
                        violations=self.link.violations).start(),
        ]
        # cocotbext-pcie 0.2.16 models no legacy interrupts (cfg_interrupt_int is ignored,
        # cfg_interrupt_sent never pulses): the hard IP's side of the handshake, and the
        # INTA level its messages give the root complex, come from nvmetb.usp.intx.
        self.intx = IntxLink(dut, dut.user_clk, self.link.violations).start()
        self.function = None
        self.transport = None

    def _limits(self):
        pcie = self.dev.functions[0].pcie_cap
        return pcie.max_payload_size, pcie.max_read_request_size

    def _record(self, addr, data):
        self.messages.append((addr, data))

    def is_msix(self, addr):
        return (addr == self.rc.msi_region.get_absolute_address(0)
                or HIGH_MSIX_BASE <= addr < HIGH_MSIX_BASE + 0x10000)

    def set_pause(self, generator_factory):
        """Backpressure on every stream: ``generator_factory()`` gives each stream an
        iterator of pause flags (cocotbext's pause generators)."""
        for port in (self.dev.rq_sink, self.dev.rc_source, self.dev.cq_source,
                     self.dev.cc_sink):
            port.set_pause_generator(generator_factory())

    async def enumerate(self):
        """Enumeration, BAR assignment, bus mastering, and every MSI-X vector allocated by
        the root complex (which writes all table entries)."""
        await Timer(200, "ns")                 # the hard IP's user_reset
        await self.rc.enumerate()
        self.function = self.rc.find_device(self.dev.functions[0].pcie_id)
        await self.function.enable_device()
        await self.function.set_master()
        vectors = await self.function.alloc_irq_vectors(self.config.msix_vectors,
                                                        self.config.msix_vectors)
        if vectors != self.config.msix_vectors:
            raise AssertionError(f"{vectors} MSI-X vectors allocated, "
                                 f"{self.config.msix_vectors} wanted")
        self.transport = PcieTransport(self)
        return self.transport


class PcieTransport(HostMemoryTransport):
    """The driver's view of a PCIe function: BAR0 through memory TLPs, configuration
    through config TLPs. Odd-numbered queues' buffers and vectors live above 4 GiB."""

    CLOCK_NS = 4

    def __init__(self, stack: PcieStack):
        super().__init__(stack.memory)
        self.stack = stack
        self.function = stack.function
        self.bar = stack.function.bar_window[0]
        self.config = stack.config             # the build (scenarios size themselves by it)
        self._allocs = 0

    async def mmio_read(self, offset, size=4):
        return int.from_bytes(await self.bar.read(offset, size), "little")

    async def mmio_write(self, offset, value, size=4):
        await self.bar.write(offset, value.to_bytes(size, "little"))

    def alloc(self, size, align=4096, *, offset=0, name=None, above_4g=None):
        # Every other queue and buffer above 4 GiB: 64-bit addressing on the link.
        match = re.fullmatch(r"[cs]q(\d+)", name or "")
        if above_4g is not None:
            high = above_4g
        elif match:
            high = int(match.group(1)) % 2 == 1
        else:
            self._allocs += 1
            high = self._allocs % 2 == 0 and name not in ("asq", "acq")
        return self.memory.alloc(size, align, offset=offset, name=name, above_4g=high)

    def msix_vector_address(self, vector):
        vectors = self.function.msi_vectors
        if not 0 <= vector < len(vectors):
            raise ValueError(f"vector {vector}: {len(vectors)} allocated")
        if vector % 4 == 3:                   # some vectors above 4 GiB
            return HIGH_MSIX_BASE + 16 * vector, HIGH_MSIX_DATA | vector
        return vectors[vector].addr, vectors[vector].data

    def msix_messages(self):
        return list(self.stack.messages)

    def fail_reads(self, start, stop):
        """Device reads overlapping [start, stop) fail: the memory region raises, and
        cocotbext-pcie's root complex answers the read with Completer Abort."""
        self.memory.fail_reads((start, stop))

    def clear_faults(self):
        self.memory.clear_faults()

    def intx(self) -> bool:
        """INTA as the root complex sees it: the level the hard IP's last Assert_INTA /
        Deassert_INTA message gave."""
        return self.stack.intx.level

    def msix_vector_of(self, addr, value):
        return super(HostMemoryTransport, self).msix_vector_of(addr, value)

    async def pci_config(self, *, bus_master=None, msix_enable=None, msix_function_mask=None):
        f = self.function
        if bus_master is not None:
            await f.set_master(bool(bus_master))
        if msix_enable is not None or msix_function_mask is not None:
            ctrl = await f.capability_read_dword(PciCapId.MSIX, 0)
            if msix_enable is not None:
                ctrl = ctrl & ~(1 << 31) | int(bool(msix_enable)) << 31
            if msix_function_mask is not None:
                ctrl = ctrl & ~(1 << 30) | int(bool(msix_function_mask)) << 30
            await f.capability_write_dword(PciCapId.MSIX, 0, ctrl)
            # The hard IP shows the new bits on cfg_interrupt_msix_* a cycle later.
            await Timer(4 * self.CLOCK_NS, "ns")

    async def wait(self, us):
        await Timer(max(self.CLOCK_NS, int(us * 1000)), "ns")

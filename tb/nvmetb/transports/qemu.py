"""The host driver on QEMU's NVMe device, over the qtest protocol: a second opinion from a
controller we did not write.

:class:`QemuTransport` starts ``qemu-system-x86_64`` (Debian's ``qemu-system-x86``, 7.2)
with no guest: a q35 machine whose only firmware is a page of ``hlt`` (so nothing but
this transport touches the device, and the virtual clock runs for QEMU's timers), the
NVMe device on a raw image, and the qtest protocol on a Unix socket. Through qtest it

- enumerates the NVMe function on bus 0 through configuration space (ports CF8h/CFCh),
  checks its class code (01 08 02), finds its MSI-X capability, places BAR0 in the PCI
  hole and enables memory decoding;
- reads and writes BAR0 with ``readl`` / ``writel`` / ``readq`` / ``writeq``;
- allocates queues and buffers in guest RAM (below and above 4 GiB) and reads and writes
  them with ``b64read`` / ``b64write``;
- points each MSI-X table entry at its own DWORD in a page of guest RAM and watches that
  page: a message is QEMU's write of the vector's data there. The transport clears the
  DWORD once it has seen a message, so two messages of one vector that land between two
  looks count as one (:meth:`msix_messages` is "at least one since the last look");
- sees INTx as the I/O APIC input it drives (qtest's ``irq_intercept_in``);
- lets time pass in real time (:meth:`wait` sleeps: the VM runs, so QEMU's virtual clock
  and the device's timers move).

QEMU always stops: :meth:`close` (also on ``with`` exit, on garbage collection, at
interpreter exit, and when the Python process dies, through the parent-death signal)
terminates it and waits. A missing ``qemu-system-x86_64`` raises :class:`QemuMissing`,
which tests turn into a skip (:func:`qemu_binary` finds it).
"""

import asyncio
import atexit
import base64
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

from nvmecore.layouts import MSIX_PBA_BASE, MSIX_TABLE_BASE
from nvmetb.host.transport import Transport
from nvmetb.hostmem import PAGE_SIZE

__all__ = ["QemuMissing", "QemuError", "QemuConfig", "QemuTransport", "Qtest", "qemu_binary",
           "PCI_CLASS_NVME"]

log = logging.getLogger("tb")

#: Class code of an NVM Express I/O controller: base 01h, sub 08h, interface 02h.
PCI_CLASS_NVME = 0x010802
_PCI_COMMAND = 0x04
_PCI_COMMAND_MEMORY = 1 << 1
_PCI_COMMAND_MASTER = 1 << 2
_PCI_CLASS_REVISION = 0x08
_PCI_HEADER_TYPE = 0x0E
_PCI_BAR0 = 0x10
_PCI_CAP_PTR = 0x34
_PCI_STATUS_CAP_LIST = 1 << 20            # bit 4 of the status register, in dword 04h
_PCI_CAP_ID_MSIX = 0x11
_MSIX_CTRL_ENABLE = 1 << 15
_MSIX_CTRL_FUNCTION_MASK = 1 << 14

#: Guest physical memory the transport hands out. q35 with 3 GiB of RAM keeps 2 GiB below
#: 4 GiB and puts the rest at 4 GiB.
_LOW = (0x0100_0000, 0x7000_0000)
_HIGH = (0x1_0000_0000, 0x1_4000_0000)
_BAR0 = 0xC000_0000                        # in q35's PCI hole (above 2 GiB of low RAM)
_MSIX_PAGE = 0x00F0_0000                   # the page MSI-X messages are aimed at
_MSIX_DATA = 0x4D58_0000                   # message data: this | vector


class QemuMissing(RuntimeError):
    """qemu-system-x86_64 is not installed."""


class QemuError(RuntimeError):
    """QEMU refused a qtest command, died, or did not answer in time."""


def qemu_binary() -> str | None:
    """Path of qemu-system-x86_64 (``$QEMU`` overrides), or None."""
    return shutil.which(os.environ.get("QEMU") or "qemu-system-x86_64")


def _die_with_parent():
    """In the child before exec: SIGTERM when the parent dies (Linux prctl)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


class Qtest:
    """The qtest line protocol over a connected socket: one command, one ``OK ...`` or
    ``FAIL ...`` line (asynchronous ``IRQ`` lines are skipped)."""

    def __init__(self, sock: socket.socket, timeout_s=30.0):
        self.sock = sock
        self.sock.settimeout(timeout_s)
        self._buffer = b""
        self.commands = 0
        #: Interrupt lines intercepted (``irq_intercept_in``): GSI -> level.
        self.irq_levels: dict[int, bool] = {}

    def _line(self) -> str:
        while b"\n" not in self._buffer:
            try:
                chunk = self.sock.recv(1 << 16)
            except TimeoutError as error:
                raise QemuError("QEMU did not answer a qtest command in time") from error
            if not chunk:
                raise QemuError("QEMU closed the qtest connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def cmd(self, line: str) -> list[str]:
        self.sock.sendall(line.encode() + b"\n")
        self.commands += 1
        while True:
            reply = self._line()
            if reply.startswith("IRQ"):
                _, what, line = reply.split()[:3]
                self.irq_levels[int(line)] = what == "raise"
                continue
            words = reply.split()
            if not words or words[0] != "OK":
                raise QemuError(f"qtest {line.split()[0]}: {reply}")
            return words[1:]

    def outl(self, port, value):
        self.cmd(f"outl {port:#x} {value:#x}")

    def inl(self, port) -> int:
        return int(self.cmd(f"inl {port:#x}")[0], 16)

    def read(self, addr, size) -> int:
        suffix = {1: "b", 2: "w", 4: "l", 8: "q"}[size]
        return int(self.cmd(f"read{suffix} {addr:#x}")[0], 16)

    def write(self, addr, size, value):
        suffix = {1: "b", 2: "w", 4: "l", 8: "q"}[size]
        self.cmd(f"write{suffix} {addr:#x} {value:#x}")

    def memread(self, addr, n) -> bytes:
        if n == 0:
            return b""
        return base64.b64decode(self.cmd(f"b64read {addr:#x} {n:#x}")[0])

    def memwrite(self, addr, data: bytes):
        if data:
            self.cmd(f"b64write {addr:#x} {len(data):#x} {base64.b64encode(data).decode()}")


@dataclass(frozen=True)
class QemuConfig:
    """The QEMU NVMe device's properties (``-device nvme,...``) and the machine."""
    io_queues: int = 4                    # max_ioqpairs
    max_queue_entries: int = 2048         # MQES + 1: fixed in QEMU 7.2 (CAP.MQES 7FFh)
    mdts: int = 7
    namespace_bytes: int = 1 << 20
    lba_bytes: int = 512
    serial: str = "nvmetb-qemu"
    memory: str = "3G"
    aerl: int = 3

    @property
    def msix_vectors(self):
        return self.io_queues + 1


_live: "weakref.WeakSet[QemuTransport]" = weakref.WeakSet()


@atexit.register
def _stop_all():
    for transport in list(_live):
        transport.close()


def _stop(proc: subprocess.Popen, sock: socket.socket | None, workdir: str):
    """Stop QEMU (terminate, then kill) and remove its files: safe to call twice."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    shutil.rmtree(workdir, ignore_errors=True)


class QemuTransport(Transport):
    """QEMU's NVMe device behind qtest. Use as a context manager (or call :meth:`close`)::

        with QemuTransport(QemuConfig(io_queues=4)) as qemu:
            host = NvmeHost(qemu)
            asyncio.run(host.bring_up(4))
    """

    kind = "qemu"

    def __init__(self, config: QemuConfig | None = None, *, timeout_s=30.0, image=None):
        self.qemu_config = config or QemuConfig()
        binary = qemu_binary()
        if binary is None:
            raise QemuMissing("qemu-system-x86_64 not found (Debian: apt-get install "
                              "qemu-system-x86; or set QEMU=/path/to/qemu-system-x86_64)")
        self.workdir = tempfile.mkdtemp(prefix="nvmetb-qemu-")
        self._proc = None
        self._sock = None
        self._finalizer = None
        self.msix = []                       # (addr, data) of every message seen, in order
        self._low = _LOW[0]
        self._high = _HIGH[0]
        self.buffers: dict[int, tuple[int, str | None]] = {}
        try:
            self._start(binary, timeout_s, image)
            self._enumerate()
        except BaseException:
            self.close()
            raise
        _live.add(self)

    # -- Process ---------------------------------------------------------------------------

    def _start(self, binary, timeout_s, image):
        cfg = self.qemu_config
        work = Path(self.workdir)
        if image is None:
            image = work / "ns.img"
            with open(image, "wb") as f:
                f.truncate(cfg.namespace_bytes)
        # The only firmware: 64 KiB of HLT. The reset vector halts the CPU with interrupts
        # off, so no BIOS probes the device, and the VM runs (its clock moves).
        bios = work / "hlt.bin"
        bios.write_bytes(b"\xF4" * 0x10000)
        sock_path = work / "qtest.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(sock_path))
        listener.listen(1)
        listener.settimeout(timeout_s)
        lbads = cfg.lba_bytes.bit_length() - 1
        args = [
            binary, "-machine", "q35", "-accel", "tcg", "-m", cfg.memory, "-display", "none",
            "-nodefaults", "-no-user-config", "-bios", str(bios), "-monitor", "none",
            "-serial", "none", "-qtest", f"unix:{sock_path}", "-qtest-log", "/dev/null",
            "-drive", f"file={image},if=none,id=ns0,format=raw,discard=unmap",
            "-device", f"nvme,serial={cfg.serial},drive=ns0,max_ioqpairs={cfg.io_queues},"
                       f"msix_qsize={cfg.msix_vectors},"
                       f"mdts={cfg.mdts},aerl={cfg.aerl},"
                       f"logical_block_size={cfg.lba_bytes},physical_block_size={cfg.lba_bytes}",
        ]
        log.debug("qemu: %s (LBADS %d)", " ".join(args), lbads)
        self._stderr = open(work / "stderr.log", "wb")   # noqa: SIM115 (kept open for QEMU)
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                      stderr=self._stderr, preexec_fn=_die_with_parent)
        self._finalizer = weakref.finalize(self, _stop, self._proc, None, self.workdir)
        try:
            conn, _ = listener.accept()
        except TimeoutError as error:
            raise QemuError(f"QEMU did not connect to qtest: {self._stderr_text()}") from error
        finally:
            listener.close()
        self._sock = conn
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _stop, self._proc, conn, self.workdir)
        self.qt = Qtest(conn, timeout_s)

    def _stderr_text(self):
        with contextlib.suppress(OSError):
            return (Path(self.workdir) / "stderr.log").read_text()[-2000:]
        return ""

    def close(self):
        """Stop QEMU (idempotent)."""
        if self._finalizer is not None:
            self._finalizer()
        with contextlib.suppress(Exception):
            self._stderr.close()
        _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    # -- Configuration space ------------------------------------------------------------

    def _cfg_addr(self, offset):
        bus, dev, fn = self.bdf
        return 0x8000_0000 | bus << 16 | dev << 11 | fn << 8 | offset & 0xFC

    def cfg_read(self, offset) -> int:
        self.qt.outl(0xCF8, self._cfg_addr(offset))
        return self.qt.inl(0xCFC)

    def cfg_write(self, offset, value):
        self.qt.outl(0xCF8, self._cfg_addr(offset))
        self.qt.outl(0xCFC, value)

    def _enumerate(self):
        """Find the NVMe function on bus 0, its MSI-X capability; map BAR0."""
        found = None
        for dev in range(32):
            self.bdf = (0, dev, 0)
            ids = self.cfg_read(0)
            if ids & 0xFFFF == 0xFFFF:
                continue
            functions = 8 if self.cfg_read(_PCI_HEADER_TYPE & ~3) >> 16 & 0x80 else 1
            for fn in range(functions):
                self.bdf = (0, dev, fn)
                if self.cfg_read(0) & 0xFFFF == 0xFFFF:
                    continue
                if self.cfg_read(_PCI_CLASS_REVISION) >> 8 == PCI_CLASS_NVME:
                    found = (0, dev, fn)
                    break
            if found:
                break
        if found is None:
            raise QemuError("no PCI function with class code 01 08 02 on bus 0")
        self.bdf = found
        self.pci_ids = self.cfg_read(0)
        # MSI-X capability: table and PBA must be where the driver puts them (BAR0 at
        # 2000h and 3000h), as on our core.
        self.msix_cap = None
        if self.cfg_read(_PCI_COMMAND) & _PCI_STATUS_CAP_LIST:
            ptr = self.cfg_read(_PCI_CAP_PTR) & 0xFC
            for _ in range(48):
                if not ptr:
                    break
                header = self.cfg_read(ptr)
                if header & 0xFF == _PCI_CAP_ID_MSIX:
                    self.msix_cap = ptr
                    break
                ptr = header >> 8 & 0xFC
        if self.msix_cap is None:
            raise QemuError("the NVMe function has no MSI-X capability")
        table = self.cfg_read(self.msix_cap + 4)
        pba = self.cfg_read(self.msix_cap + 8)
        self.msix_table_size = (self.cfg_read(self.msix_cap) >> 16 & 0x7FF) + 1
        if (table & 7, table & ~7, pba & 7, pba & ~7) != (0, MSIX_TABLE_BASE, 0,
                                                            MSIX_PBA_BASE):
            raise QemuError(f"MSI-X table {table:#x} / PBA {pba:#x}: the driver expects "
                            f"BAR0 + {MSIX_TABLE_BASE:#x} / {MSIX_PBA_BASE:#x}")
        # BAR0: 64-bit memory; size it, then place it.
        self.cfg_write(_PCI_BAR0, 0xFFFF_FFFF)
        size = (~(self.cfg_read(_PCI_BAR0) & ~0xF) & 0xFFFF_FFFF) + 1
        self.bar0_size = size
        self.cfg_write(_PCI_BAR0, _BAR0)
        self.cfg_write(_PCI_BAR0 + 4, 0)
        self.bar0 = _BAR0
        self._command(set_bits=_PCI_COMMAND_MEMORY)
        # Clear the message page; report the interrupt controller's input lines (INTx).
        self.qt.memwrite(_MSIX_PAGE, bytes(PAGE_SIZE))
        self.qt.cmd("irq_intercept_in ioapic")
        log.info("qemu: NVMe function %02x:%02x.%x (ID %08x), BAR0 %#x (%d KiB), %d MSI-X "
                 "vectors", *self.bdf, self.pci_ids, self.bar0, size // 1024,
                 self.msix_table_size)

    def _command(self, set_bits=0, clear_bits=0):
        dword = self.cfg_read(_PCI_COMMAND)
        command = (dword & 0xFFFF | set_bits) & ~clear_bits
        self.cfg_write(_PCI_COMMAND, command)            # status bits: writing 0 keeps them

    # -- Transport: BAR0 ---------------------------------------------------------------------

    async def mmio_read(self, offset, size=4):
        self._poll_msix()
        return self.qt.read(self.bar0 + offset, size)

    async def mmio_write(self, offset, value, size=4):
        self.qt.write(self.bar0 + offset, size, value)

    # -- Host memory ---------------------------------------------------------------------------

    def alloc(self, size, align=PAGE_SIZE, *, offset=0, name=None, above_4g=None) -> int:
        """A zeroed buffer in guest RAM: ``offset`` past an ``align`` boundary, below 4 GiB
        unless ``above_4g``. Never reused (a run allocates little)."""
        high = bool(above_4g)
        cursor = self._high if high else self._low
        addr = -(-cursor // align) * align + offset
        limit = (_HIGH if high else _LOW)[1]
        if addr + size > limit:
            raise MemoryError(f"guest RAM {'above' if high else 'below'} 4 GiB used up")
        # Keep buffers a page apart so that an overrun lands in no other buffer.
        end = -(-(addr + size) // PAGE_SIZE) * PAGE_SIZE + PAGE_SIZE
        if high:
            self._high = end
        else:
            self._low = end
        self.qt.memwrite(addr, bytes(size))
        self.buffers[addr] = (size, name)
        return addr

    def mem_read(self, addr, n) -> bytes:
        self._poll_msix()             # a CQ poll is the host's moment to see messages
        return self.qt.memread(addr, n)

    def mem_write(self, addr, data):
        self.qt.memwrite(addr, bytes(data))

    # -- Interrupts ------------------------------------------------------------------------

    def msix_vector_address(self, vector):
        if not 0 <= vector < min(self.msix_table_size, PAGE_SIZE // 4):
            raise ValueError(f"vector {vector} beyond the MSI-X table")
        return _MSIX_PAGE + 4 * vector, _MSIX_DATA | vector

    def msix_vector_of(self, addr, value):
        vector = (addr - _MSIX_PAGE) // 4
        if 0 <= vector < self.msix_table_size and (addr, value) == \
                self.msix_vector_address(vector):
            return vector
        return None

    def _poll_msix(self):
        """Record each DWORD of the message page that QEMU wrote, then clear it."""
        raw = self.qt.memread(_MSIX_PAGE, 4 * self.msix_table_size)
        for vector in range(self.msix_table_size):
            value = int.from_bytes(raw[4 * vector:4 * vector + 4], "little")
            if value:
                self.msix.append((_MSIX_PAGE + 4 * vector, value))
                self.qt.memwrite(_MSIX_PAGE + 4 * vector, bytes(4))

    def msix_messages(self):
        self._poll_msix()
        return list(self.msix)

    def intx(self) -> bool:
        """The function's INTx level, as the I/O APIC sees it (through the chipset's
        PIRQ routing; nothing else on this machine raises a line)."""
        self.qt.read(self.bar0, 4)            # a reply comes after every IRQ line before it
        return any(self.qt.irq_levels.values())

    # -- PCI function and time ------------------------------------------------------------

    async def pci_config(self, *, bus_master=None, msix_enable=None, msix_function_mask=None):
        if bus_master is not None:
            self._command(set_bits=_PCI_COMMAND_MASTER if bus_master else 0,
                          clear_bits=0 if bus_master else _PCI_COMMAND_MASTER)
        if msix_enable is not None or msix_function_mask is not None:
            dword = self.cfg_read(self.msix_cap)
            control = dword >> 16
            for bit, on in ((_MSIX_CTRL_ENABLE, msix_enable),
                            (_MSIX_CTRL_FUNCTION_MASK, msix_function_mask)):
                if on is not None:
                    control = control | bit if on else control & ~bit
            self.cfg_write(self.msix_cap, dword & 0xFFFF | control << 16)

    async def wait(self, us):
        # An asyncio sleep, so that a time-out around the scenario can cancel it here.
        await asyncio.sleep(max(us, 1.0) * 1e-6)
        self._poll_msix()

    def function_level_reset(self):
        """Not offered by QEMU's NVMe function (no FLR capability bit)."""
        raise NotImplementedError

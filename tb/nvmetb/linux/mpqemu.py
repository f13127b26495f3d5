"""QEMU's multi-process protocol ("mpqemu", QEMU 7.2), the device side, and the PCI
configuration space nvmecore shows behind it.

The guest's QEMU runs ``-device x-pci-proxy-dev,fd=N``: it forwards the function's
configuration-space and BAR accesses over a UNIX stream socket and waits for each reply.
A message is a 16-byte header (``int32 cmd``, padding, ``uint64 size``), ``size`` bytes of
payload (at most 192) and up to 8 file descriptors (``SCM_RIGHTS``), all little-endian
[QEMU 7.2 include/hw/remote/mpqemu-link.h]. :class:`Link` reads and answers them;
:class:`ConfigSpace` is a type-0 header of our own: class 01 08 02 (NVM Express), a
64-bit memory BAR0 of ``BAR0_SIZE``, INTx pin A, no capabilities (the proxy carries
neither MSI nor MSI-X).
"""

import enum
import mmap
import os
import select
import socket
import struct
from bisect import bisect_right
from dataclasses import dataclass

from nvmecore.layouts import BAR0_SIZE

__all__ = ["Cmd", "Message", "Link", "ConfigSpace", "GuestRam", "PCI_CLASS_NVME"]

HEADER = struct.Struct("<i4xQ")
MAX_PAYLOAD = 192
MAX_FDS = 8


class Cmd(enum.IntEnum):
    SYNC_SYSMEM = 0
    RET = 1
    PCI_CFGWRITE = 2
    PCI_CFGREAD = 3
    BAR_WRITE = 4
    BAR_READ = 5
    SET_IRQFD = 6
    DEVICE_RESET = 7


#: SYNC_SYSMEM: ``u64 gpa[8]``, ``u64 size[8]``, ``i64 offset[8]``; one fd per region.
SYSMEM = struct.Struct("<8Q8Q8q")
#: PCI_CFGWRITE / PCI_CFGREAD: ``u32 addr``, ``u32 val``, ``i32 len``.
CONF = struct.Struct("<IIi")
#: BAR_WRITE / BAR_READ: ``u64 addr``, ``u64 val``, ``u32 size``, ``u8 memory``, padding.
BAR = struct.Struct("<QQIB3x")
RET = struct.Struct("<Q")


@dataclass
class Message:
    cmd: Cmd
    payload: bytes
    fds: list


class Link:
    """The device's end of the socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.received = 0

    def fileno(self):
        return self.sock.fileno()

    def poll(self, timeout=0.0) -> bool:
        """Whether a message (or EOF) is waiting, within ``timeout`` seconds."""
        return bool(select.select([self.sock], [], [], timeout)[0])

    def receive(self) -> Message | None:
        """The next message (blocking); None at EOF (the guest's QEMU is gone)."""
        fds = []
        header = bytearray()
        while len(header) < HEADER.size:
            data, anc, _flags, _ = self.sock.recvmsg(
                HEADER.size - len(header), socket.CMSG_SPACE(MAX_FDS * 4))
            if not data:
                return None
            header += data
            for level, kind, blob in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += list(struct.unpack(f"<{len(blob) // 4}i", blob[:len(blob) // 4 * 4]))
        cmd, size = HEADER.unpack(header)
        if size > MAX_PAYLOAD:
            raise ValueError(f"mpqemu message {cmd} of {size} bytes (at most {MAX_PAYLOAD})")
        payload = bytearray()
        while len(payload) < size:
            data = self.sock.recv(size - len(payload))
            if not data:
                return None
            payload += data
        self.received += 1
        return Message(Cmd(cmd), bytes(payload), fds)

    def reply(self, value: int):
        """A RET message: the answer the proxy waits for."""
        self.sock.sendall(HEADER.pack(Cmd.RET, RET.size) + RET.pack(value & (1 << 64) - 1))


class GuestRam:
    """Guest RAM as the proxy shares it: regions of guest-physical addresses mapped from
    the memfds of each SYNC_SYSMEM (every memory-map change sends a new set)."""

    def __init__(self):
        self._starts: list[int] = []
        self._regions: list[tuple[int, int, mmap.mmap]] = []     # (gpa, size, map)
        self.syncs = 0

    def sync(self, msg: Message):
        gpas, sizes, offsets = (lambda v: (v[:8], v[8:16], v[16:]))(
            SYSMEM.unpack(msg.payload.ljust(SYSMEM.size, b"\0")))
        regions = []
        try:
            for i, fd in enumerate(msg.fds):
                m = mmap.mmap(fd, sizes[i], flags=mmap.MAP_SHARED,
                              prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=offsets[i])
                regions.append((gpas[i], sizes[i], m))
        finally:
            for fd in msg.fds:
                os.close(fd)
        for *_, m in self._regions:
            m.close()
        self._regions = sorted(regions)
        self._starts = [r[0] for r in self._regions]
        self.syncs += 1

    @property
    def regions(self):
        return [(gpa, size) for gpa, size, _ in self._regions]

    def _find(self, addr, length):
        i = bisect_right(self._starts, addr) - 1
        if i >= 0:
            gpa, size, m = self._regions[i]
            if addr + length <= gpa + size:
                return m, addr - gpa
        return None, 0

    def contains(self, addr, length) -> bool:
        return self._find(addr, max(length, 1))[0] is not None

    def read(self, addr, length) -> bytes:
        m, off = self._find(addr, length)
        if m is None:
            raise ValueError(f"guest RAM read of {length} B at {addr:#x}: not RAM")
        return m[off:off + length]

    def write(self, addr, data):
        m, off = self._find(addr, len(data))
        if m is None:
            raise ValueError(f"guest RAM write of {len(data)} B at {addr:#x}: not RAM")
        m[off:off + len(data)] = data

    def close(self):
        for *_, m in self._regions:
            m.close()
        self._regions, self._starts = [], []


#: Mass storage controller, Non-Volatile memory controller, NVM Express [PCI Code and ID
#: Assignment 1.11 §1.2].
PCI_CLASS_NVME = 0x010802

# Type-0 header offsets and bits [PCI Local Bus 3.0 §6.2].
_VENDOR, _COMMAND, _STATUS, _REVISION, _BAR0, _SUBSYSTEM = 0x00, 0x04, 0x06, 0x08, 0x10, 0x2C
_INT_LINE, _INT_PIN = 0x3C, 0x3D
COMMAND_MEMORY, COMMAND_MASTER, COMMAND_INTX_DISABLE = 1 << 1, 1 << 2, 1 << 10
_COMMAND_WRITABLE = COMMAND_MEMORY | COMMAND_MASTER | COMMAND_INTX_DISABLE
STATUS_INTERRUPT = 1 << 3
_BAR_64BIT = 0b100


class ConfigSpace:
    """The function's 256-byte configuration space. Only the command register, BAR0/1 and
    the interrupt line are writable; every other byte reads as set up here (zero where
    nothing is)."""

    def __init__(self, vendor_id, device_id, subsystem_vendor_id, subsystem_id, revision=0):
        self.ids = (vendor_id, device_id, subsystem_vendor_id, subsystem_id, revision)
        self.reset()

    def reset(self):
        vendor_id, device_id, sub_vendor, sub_id, revision = self.ids
        self.space = bytearray(256)
        struct.pack_into("<HH", self.space, _VENDOR, vendor_id, device_id)
        struct.pack_into("<I", self.space, _REVISION, PCI_CLASS_NVME << 8 | revision)
        struct.pack_into("<HH", self.space, _SUBSYSTEM, sub_vendor, sub_id)
        self.space[_INT_PIN] = 1                       # INTA#
        self.bar = 0                                   # BAR0/1 as one 64-bit value
        self.intx = False

    @property
    def command(self):
        return struct.unpack_from("<H", self.space, _COMMAND)[0]

    @property
    def bus_master(self):
        return bool(self.command & COMMAND_MASTER)

    @property
    def intx_enabled(self):
        return not self.command & COMMAND_INTX_DISABLE

    @property
    def bar0(self):
        """BAR0's base address (the memory-type bits cleared)."""
        return self.bar & ~(BAR0_SIZE - 1)

    def _bar_dwords(self):
        low = (self.bar & 0xFFFF_FFFF & ~(BAR0_SIZE - 1)) | _BAR_64BIT
        return low, self.bar >> 32

    def read(self, addr, length) -> int:
        view = bytearray(self.space)
        low, high = self._bar_dwords()
        struct.pack_into("<II", view, _BAR0, low, high)
        status = struct.unpack_from("<H", view, _STATUS)[0]
        if self.intx:
            status |= STATUS_INTERRUPT
        struct.pack_into("<H", view, _STATUS, status)
        if addr + length > len(view):
            return 0
        return int.from_bytes(view[addr:addr + length], "little")

    def write(self, addr, value, length):
        for i in range(length):
            self._write_byte(addr + i, value >> 8 * i & 0xFF)

    def _write_byte(self, addr, byte):
        if addr in (_COMMAND, _COMMAND + 1):
            shift = 8 * (addr - _COMMAND)
            command = self.command & ~(0xFF << shift) | byte << shift
            struct.pack_into("<H", self.space, _COMMAND, command & _COMMAND_WRITABLE)
        elif _BAR0 <= addr < _BAR0 + 8:
            shift = 8 * (addr - _BAR0)
            bar = self.bar & ~(0xFF << shift) | byte << shift
            self.bar = bar & ~(BAR0_SIZE - 1) & (1 << 64) - 1
        elif addr == _INT_LINE:
            self.space[addr] = byte

"""The pieces of the Linux co-simulation that need no QEMU: the mpqemu wire format over a
real socketpair (file descriptors included), guest RAM mapped from a memfd, the
configuration space as the proxy and Linux size and program it, and the judging of a run
folder."""

import json
import mmap
import os
import socket
import struct

import pytest

from nvmecore.layouts import BAR0_SIZE
from nvmetb.linux.mpqemu import (
    BAR,
    CONF,
    HEADER,
    PCI_CLASS_NVME,
    SYSMEM,
    Cmd,
    ConfigSpace,
    GuestRam,
    Link,
)

pytestmark = pytest.mark.quick


def _send(sock, cmd, payload=b"", fds=()):
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"<{len(fds)}i", *fds))] \
        if fds else []
    sock.sendmsg([HEADER.pack(cmd, len(payload)) + payload], anc)


def test_link_messages_and_reply():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    link = Link(ours)
    assert not link.poll(0)
    _send(theirs, Cmd.BAR_READ, BAR.pack(0xFEBF801C, 0, 4, 1))
    assert link.poll(1)
    msg = link.receive()
    assert msg.cmd == Cmd.BAR_READ and BAR.unpack(msg.payload) == (0xFEBF801C, 0, 4, 1)
    link.reply(0x1234_5678_9ABC)
    cmd, size = HEADER.unpack(theirs.recv(HEADER.size))
    assert (cmd, size) == (Cmd.RET, 8)
    assert struct.unpack("<Q", theirs.recv(8))[0] == 0x1234_5678_9ABC
    theirs.close()
    assert link.receive() is None                 # EOF: the guest's QEMU is gone
    ours.close()


def test_sync_sysmem_maps_guest_ram():
    fd = os.memfd_create("guest")
    os.ftruncate(fd, 3 * mmap.PAGESIZE)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    # Two regions from one memfd: gpa 0 (page 0), gpa 1 MiB (pages 1 and 2).
    gpas, sizes, offsets = [0, 1 << 20], [mmap.PAGESIZE, 2 * mmap.PAGESIZE], \
        [0, mmap.PAGESIZE]
    pad = [0] * 6
    _send(theirs, Cmd.SYNC_SYSMEM, SYSMEM.pack(*gpas, *pad, *sizes, *pad, *offsets, *pad),
          fds=[fd, fd])
    msg = Link(ours).receive()
    assert msg.cmd == Cmd.SYNC_SYSMEM and len(msg.fds) == 2
    ram = GuestRam()
    ram.sync(msg)
    assert ram.regions == [(0, mmap.PAGESIZE), (1 << 20, 2 * mmap.PAGESIZE)]
    ram.write((1 << 20) + 8, b"nvmecore")
    assert os.pread(fd, 8, mmap.PAGESIZE + 8) == b"nvmecore"     # shared with the guest
    os.pwrite(fd, b"linux", 2 * mmap.PAGESIZE)
    assert ram.read((1 << 20) + mmap.PAGESIZE, 5) == b"linux"
    assert ram.contains(0, mmap.PAGESIZE) and not ram.contains(mmap.PAGESIZE - 4, 8)
    with pytest.raises(ValueError):
        ram.read(0x8000_0000, 4)
    ram.close()
    os.close(fd)
    ours.close()
    theirs.close()


def test_config_space():
    cfg = ConfigSpace(0x10EE, 0x9038, 0x10EE, 0x0007)
    assert cfg.read(0, 4) == 0x9038_10EE
    assert cfg.read(0x08, 4) >> 8 == PCI_CLASS_NVME
    assert cfg.read(0x2C, 4) == 0x0007_10EE
    assert cfg.read(0x3D, 1) == 1                  # INTA#
    assert cfg.read(0x06, 2) & 1 << 4 == 0         # no capability list
    # Sizing as the proxy and the firmware do it: all ones, read back, restore.
    cfg.write(0x10, 0xFFFF_FFFF, 4)
    cfg.write(0x14, 0xFFFF_FFFF, 4)
    low, high = cfg.read(0x10, 4), cfg.read(0x14, 4)
    assert low & 0xF == 0b0100                      # memory, 64-bit, not prefetchable
    assert -(low & ~0xF) & 0xFFFF_FFFF == BAR0_SIZE and high == 0xFFFF_FFFF
    for bar in range(0x18, 0x28, 4):
        cfg.write(bar, 0xFFFF_FFFF, 4)
        assert cfg.read(bar, 4) == 0
    cfg.write(0x10, 0xFEBF_8000, 4)
    cfg.write(0x14, 0, 4)
    assert cfg.bar0 == 0xFEBF_8000
    assert not cfg.bus_master
    cfg.write(0x04, 0x0406, 2)                     # memory, bus master, INTx disabled
    assert cfg.bus_master and not cfg.intx_enabled and cfg.read(0x04, 2) == 0x0406
    cfg.write(0x00, 0xFFFF_FFFF, 4)                # IDs are read-only
    assert cfg.read(0, 4) == 0x9038_10EE
    cfg.reset()
    assert cfg.read(0x04, 2) == 0 and cfg.bar0 == 0


def test_conf_layout():
    assert CONF.size == 12 and BAR.size == 24 and SYSMEM.size == 192 and HEADER.size == 16


def _run_folder(tmp_path, console, **device):
    (tmp_path / "console.log").write_text(console)
    base = {"qemu_rc": 0, "timed_out": False, "wall_s": 1.0, "cycles": 1,
            "stats": {"shutdowns": [1], "shutdown_complete": [2]},
            "dma": {"reads": 1, "writes": 1}, "violations": [], "admin_commands": 3,
            "admin_errors": []}
    (tmp_path / "device.json").write_text(json.dumps({**base, **device}))
    return tmp_path


GOOD = """[    1.0] nvme nvme0: pci function 0000:00:01.0
@@STEP bringup BEGIN 2.00
@@STEP bringup END 2.50 PASS
@@STEP dd4k BEGIN 2.50
@@STEP dd4k END 3.00 PASS
[    4.0] reboot: Power down
"""


def test_judge(tmp_path):
    from nvmetb.linux.run import CONFIG, judge

    report = judge(_run_folder(tmp_path, GOOD), CONFIG, ("bringup", "dd4k"))
    assert report.ok, report.table()
    assert report.rows[1].seconds == pytest.approx(0.5)
    # A failed step, a missing step, a driver time-out, a DMA violation, no shutdown and
    # an undocumented refusal each fail the run.
    bad = {
        "step": (GOOD.replace("dd4k END 3.00 PASS", "dd4k END 3.00 FAIL"), {}),
        "missing": (GOOD.replace("@@STEP dd4k END 3.00 PASS\n", ""), {}),
        "timeout": (GOOD + "[    5.0] nvme nvme0: I/O 14 QID 0 timeout, reset controller\n",
                    {}),
        "dma": (GOOD, {"violations": ["read of 8 B at 0x0: crosses-4k"]}),
        "shutdown": (GOOD, {"stats": {"shutdowns": [], "shutdown_complete": []}}),
        "admin": (GOOD, {"admin_errors": [["1 SQE cid=0x1 CREATE_IO_SQ nsid=0x0 cdw10=0x0",
                                           "2 CQE cid=0x1 sct=1 sc=0x01 dnr=1"]]}),
        "qemu": (GOOD, {"qemu_rc": 1}),
    }
    for name, (console, device) in bad.items():
        folder = tmp_path / name
        folder.mkdir()
        report = judge(_run_folder(folder, console, **device), CONFIG, ("bringup", "dd4k"))
        assert not report.ok, f"{name}: {report.table()}"
    # The documented refusal passes.
    folder = tmp_path / "documented"
    folder.mkdir()
    refusal = [["1 SQE cid=0x1 IDENTIFY nsid=0x0 cdw10=0x00000006 cdw11=0x00000000",
                "2 CQE cid=0x1 sct=0 sc=0x02 dnr=1 dw0=0x0"]]
    assert judge(_run_folder(folder, GOOD, admin_errors=refusal), CONFIG,
                 ("bringup", "dd4k")).ok

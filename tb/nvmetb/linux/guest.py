"""The Linux guest of the co-simulation: a stock Debian kernel and a small initramfs.

Everything is fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into
``build/linux/`` (nothing is installed on the host): Debian's ``linux-image-*-cloud-amd64``
(NVMe built in; its bzImage's LZ4 payload is unpacked to ``vmlinux``, which QEMU boots
through its PVH note), ``busybox-static``, and ``nvme-cli`` with its shared libraries
(found with ``ldd``). The initramfs's ``/init`` runs the steps named on the kernel command
line (``nvmetest=step,step,...``, see :data:`INIT`) and powers off; each step prints
``@@STEP <name> BEGIN`` / ``@@STEP <name> END <status>`` on the console.

    python -m nvmetb.linux.guest            # build (or reuse) build/linux/guest/

``fio`` is left out: Debian's fio depends on the Ceph, Gluster, RDMA and PMEM client
libraries, tens of MiB in the initramfs for a tool the steps below do not need.
"""

import gzip
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nvmetb.sim import REPO_ROOT

__all__ = ["GUEST_DIR", "Guest", "build_guest", "INIT"]

LINUX_DIR = REPO_ROOT / "build" / "linux"
GUEST_DIR = LINUX_DIR / "guest"

#: The kernel's meta package (depends on the versioned image).
KERNEL_META = "linux-image-cloud-amd64"
#: Userland packages, unpacked; their libraries come from here first, then the host's
#: (Debian 12 as well) when ``ldd`` finds them there.
USER_PACKAGES = ("busybox-static", "nvme-cli", "libnvme1", "libjson-c5", "libuuid1",
                 "zlib1g", "libdbus-1-3", "libssl3")
#: Programs copied into the initramfs with their libraries (paths in the unpacked tree).
PROGRAMS = ("usr/sbin/nvme",)
#: The bzImage payload's LZ4 legacy-frame magic.
LZ4_LEGACY_MAGIC = bytes.fromhex("02214c18")

#: Bump to rebuild the initramfs when the init script or its contents change.
GUEST_VERSION = 11

# The guest's init: one shell function per step. The device is /dev/nvme0 with namespace
# /dev/nvme0n1 (4 MiB at most a few MiB: every data step stays in its first MiB).
INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp && mount -t tmpfs tmpfs /tmp

NS=/dev/nvme0n1
CTRL=/dev/nvme0

pattern() {  # pattern FILE BYTES SEED: a reproducible pattern, different per seed
  awk -v n="$2" -v s="$3" 'BEGIN { srand(s); for (i = 0; i < n / 16; i++)
    printf "%08x%08x", int(rand() * 4294967295), i + s * 65536 }' > "$1"
}
zeroes() { dd if=/dev/zero of="$1" bs="$2" count=1 2>/dev/null; }
readback() {  # readback OFFSET_BLOCKS BS FILE: read with direct I/O, compare with FILE
  dd if=$NS of=/tmp/rb bs="$2" skip="$1" count=1 iflag=direct 2>/dev/null &&
    cmp /tmp/rb "$3"
}
roundtrip() {  # roundtrip BS SEED OFFSET_BLOCKS
  pattern /tmp/wr "$1" "$2" &&
    dd if=/tmp/wr of=$NS bs="$1" seek="$3" count=1 oflag=direct 2>/dev/null &&
    readback "$3" "$1" /tmp/wr
}

step_bringup() {
  dmesg | grep -E 'nvme[0-9]|nvme ' > /tmp/drv; cat /tmp/drv
  [ -b $NS ] && [ -c $CTRL ] && ! grep -iE 'timeout|error|fail|abort' /tmp/drv
}
step_list() { nvme list && nvme list | grep -q nvme0n1; }
hexdump() {  # hexdump NAME COMMAND...: the command's binary output as hex on the console
  local rc
  echo "@@HEX-BEGIN $1"; shift; "$@" -b > /tmp/raw && od -An -tx1 -v /tmp/raw
  rc=$?; echo "@@HEX-END"; return $rc
}
step_idctrl() {
  echo @@JSON-BEGIN id-ctrl; nvme id-ctrl $CTRL -o json; echo @@JSON-END id-ctrl
  hexdump id-ctrl nvme id-ctrl $CTRL && nvme id-ctrl $CTRL -H >/dev/null
}
step_idns() {
  echo @@JSON-BEGIN id-ns; nvme id-ns $NS -o json; echo @@JSON-END id-ns
  hexdump id-ns nvme id-ns $NS && nvme id-ns $NS -H | grep -E 'nsze|ncap|nuse|in use'
}
step_smartlog() {
  echo @@JSON-BEGIN smart-log; nvme smart-log $CTRL -o json; echo @@JSON-END smart-log
}
step_errorlog() {
  # The first four entries as nvme-cli shows them, and as raw bytes (Get Log Page 01h).
  nvme error-log $CTRL -e 4 | grep -E 'Entry|error_count|sqid|cmdid|status_field' &&
  hexdump error-log nvme get-log $CTRL --log-id=1 --log-len=256
}
step_features() {
  # Every feature the core supports; 06h (no volatile write cache) must be refused.
  local rc=0 f
  for f in 1 2 4 5 7 8 9 0xa 0xb; do
    nvme get-feature $CTRL -f $f -H > /tmp/feat 2>&1 || { rc=1; echo "feature $f failed:"; }
    head -n 3 /tmp/feat
  done
  if nvme get-feature $CTRL -f 6 > /tmp/feat 2>&1; then rc=1; fi
  echo "feature 6 (refused as documented): $(cat /tmp/feat)"
  return $rc
}
step_dd4k() { roundtrip 4096 1 3 && roundtrip 4096 2 200; }
step_dd128k() { roundtrip 131072 3 1 && roundtrip 131072 4 7; }
step_ddlarge() {
  # 1 MiB in one direct write and one direct read at 2 MiB: the block layer splits each
  # at MDTS (512 KiB), two commands in flight with PRP lists of 128 entries.
  roundtrip 1048576 12 2
}
step_parallel() {
  # Four writers at once (64 KiB blocks, 128 KiB each, from 3 MiB on), then four readers:
  # several commands in flight on the one I/O queue, completing in any order.
  local i
  for i in 0 1 2 3; do pattern /tmp/p$i 131072 $((20 + i)); done
  for i in 0 1 2 3; do
    dd if=/tmp/p$i of=$NS bs=65536 seek=$((48 + 2 * i)) count=2 oflag=direct \
      2>/dev/null &
  done
  wait
  for i in 0 1 2 3; do
    dd if=$NS of=/tmp/q$i bs=65536 skip=$((48 + 2 * i)) count=2 iflag=direct \
      2>/dev/null &
  done
  wait
  for i in 0 1 2 3; do cmp /tmp/p$i /tmp/q$i || return 1; done
}
step_smartcount() {
  # One 4 KiB direct write and one direct read between two SMART logs: the host command
  # counters move by exactly one each (the host compares the two JSON blocks).
  echo @@JSON-BEGIN smart-before; nvme smart-log $CTRL -o json; echo @@JSON-END smart-before
  roundtrip 4096 13 300 &&
  echo @@JSON-BEGIN smart-after && nvme smart-log $CTRL -o json && echo @@JSON-END smart-after
}
step_resetio() {
  # A controller reset while four writers of 512 KiB (random data, one direct write each,
  # split at MDTS or 127 segments) are inside the controller: each takes about a second of
  # simulation. The driver cancels what is in flight and resubmits it after the reset;
  # every writer succeeds and everything reads back.
  local i rc=0
  for i in 0 1 2 3; do dd if=/dev/urandom of=/tmp/r$i bs=524288 count=1 2>/dev/null; done
  for i in 0 1 2 3; do
    dd if=/tmp/r$i of=$NS bs=524288 seek=$i count=1 oflag=direct 2>/tmp/e$i &
  done
  sleep 0.5
  nvme reset $CTRL || rc=1
  for i in 0 1 2 3; do wait %$((i + 1)) || { echo "writer $i: $(cat /tmp/e$i)"; rc=1; }; done
  for i in 0 1 2 3; do
    dd if=$NS of=/tmp/s$i bs=524288 skip=$i count=1 iflag=direct 2>/dev/null &&
      cmp /tmp/r$i /tmp/s$i || rc=1
  done
  dmesg | grep -E 'nvme nvme0' | tail -n 3
  return $rc
}
step_flush() { nvme flush $NS -n 1; }
step_writezeroes() {
  # 16 KiB of pattern at LBA 64; Write Zeroes of LBAs 64..79 (NLB 15, 0's based); the
  # first 8 KiB read back as zeroes, the next 8 KiB unchanged.
  pattern /tmp/wz 16384 5 && dd if=/tmp/wz of=$NS bs=16384 seek=2 count=1 oflag=direct \
    2>/dev/null && readback 2 16384 /tmp/wz &&
  nvme write-zeroes $NS -s 64 -c 15 && zeroes /tmp/z 8192 &&
  dd if=/tmp/wz of=/tmp/wz2 bs=8192 skip=1 count=1 2>/dev/null &&
  readback 4 8192 /tmp/z && readback 5 8192 /tmp/wz2
}
step_discard() {
  # blkdiscard of 64 KiB at 1 MiB: the deallocated range reads back as zeroes.
  pattern /tmp/dc 65536 6 && dd if=/tmp/dc of=$NS bs=65536 seek=16 count=1 oflag=direct \
    2>/dev/null && readback 16 65536 /tmp/dc &&
  blkdiscard -o 1048576 -l 65536 $NS && zeroes /tmp/z 65536 && readback 16 65536 /tmp/z
}
step_format() {
  # Format NVM zeroes the whole namespace (the 128 KiB of dd128k too); LBAF 1 (4 KiB)
  # shows as the block size after the rescan; data round trips in both formats.
  roundtrip 4096 7 5 && nvme format $NS -l 0 -f && zeroes /tmp/z 4096 &&
    readback 5 4096 /tmp/z && zeroes /tmp/z128 131072 && readback 1 131072 /tmp/z128 &&
    roundtrip 4096 8 5 &&
  nvme format $NS -l 1 -f && sleep 1 &&
    echo "block size after LBAF 1: $(cat /sys/block/nvme0n1/queue/logical_block_size)" &&
    [ "$(cat /sys/block/nvme0n1/queue/logical_block_size)" = 4096 ] &&
    nvme id-ns $NS | grep -E '^(flbas|nsze)' && readback 5 4096 /tmp/z &&
    roundtrip 4096 9 6 &&
  nvme format $NS -l 0 -f && sleep 1 &&
    [ "$(cat /sys/block/nvme0n1/queue/logical_block_size)" = 512 ] && roundtrip 4096 10 5
}
step_reset() { nvme reset $CTRL && sleep 1 && roundtrip 4096 11 11 && nvme list; }
step_dmesg() {
  dmesg | grep -E 'nvme[0-9]|nvme |pci 0000:00:01'
  q=/sys/block/nvme0n1/queue
  for f in logical_block_size max_hw_sectors_kb max_segments discard_max_hw_bytes \
      write_zeroes_max_bytes nr_requests; do echo "queue/$f: $(cat $q/$f)"; done
  grep -E 'nvme|CPU0' /proc/interrupts
  true
}

steps=$(sed -n 's/.*nvmetest=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
for STEP in $steps; do
  echo "@@STEP $STEP BEGIN $(cut -d' ' -f1 /proc/uptime)"
  if step_$STEP; then RESULT=PASS; else RESULT=FAIL; fi
  echo "@@STEP $STEP END $(cut -d' ' -f1 /proc/uptime) $RESULT"
done
echo "@@DONE"
sync
poweroff -f
"""


@dataclass(frozen=True)
class Guest:
    kernel: Path            # vmlinux (ELF with a PVH note)
    initrd: Path            # gzip'd newc cpio
    kernel_version: str


def _run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs).stdout


def _apt_download(packages, dest: Path):
    """``apt-get download`` each package into ``dest`` (an ``apt-get update`` first when the
    host's package lists do not know one)."""
    dest.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(dest.glob(f"{p}_*.deb"))]
    if not missing:
        return
    try:
        _run(["apt-get", "download", *missing], cwd=dest)
    except subprocess.CalledProcessError:
        if os.geteuid() != 0:
            raise RuntimeError(f"apt-get download {' '.join(missing)} failed; run "
                               "'apt-get update' (as root) and try again") from None
        _run(["apt-get", "update", "-q"])
        _run(["apt-get", "download", *missing], cwd=dest)


def _kernel_package():
    """The versioned kernel image the meta package depends on (the package lists are
    updated first if they do not know it, as root)."""
    for attempt in (0, 1):
        out = subprocess.run(["apt-cache", "depends", KERNEL_META], text=True,
                             capture_output=True).stdout
        found = re.findall(r"Depends: (linux-image-[0-9][^\s]*-cloud-amd64)", out)
        if found:
            return found[0]
        if attempt == 0 and os.geteuid() == 0:
            _run(["apt-get", "update", "-q"])
    raise RuntimeError(f"apt-cache depends {KERNEL_META} names no kernel image; run "
                       "'apt-get update' as root")


def _vmlinux(bzimage: Path, out: Path):
    """The uncompressed kernel from a bzImage whose payload is LZ4 (Debian's)."""
    data = bzimage.read_bytes()
    at = data.find(LZ4_LEGACY_MAGIC)
    if at < 0:
        raise RuntimeError(f"{bzimage}: no LZ4 payload (magic {LZ4_LEGACY_MAGIC.hex()})")
    if shutil.which("lz4") is None:
        raise RuntimeError("lz4 is missing: apt-get install lz4 (or run 'make setup')")
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as sink:
        # lz4 stops at the end of the legacy frame; the bytes after it are not LZ4.
        subprocess.run(["lz4", "-dc"], input=data[at:], stdout=sink, check=False,
                       stderr=subprocess.DEVNULL)
    if tmp.read_bytes()[:4] != b"\x7fELF":
        raise RuntimeError(f"{bzimage}: the LZ4 payload did not unpack to an ELF file")
    tmp.rename(out)


def _libraries(program: Path, lib_dirs) -> list[Path]:
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(str(d) for d in lib_dirs))
    out = _run(["ldd", str(program)], env=env)
    libs = []
    for line in out.splitlines():
        if "not found" in line:
            raise RuntimeError(f"{program}: {line.strip()}")
        m = re.search(r"(/\S+)\s+\(0x", line)
        if m:
            libs.append(Path(m.group(1)))
    return libs


def _copy(src: Path, root: Path, dest: str):
    target = root / dest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src.resolve(), target)


def _cpio(root: Path, busybox: Path, out: Path):
    """A gzip'd newc archive of ``root`` made with busybox's cpio (Debian has no cpio)."""
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    proc = subprocess.run([str(busybox), "cpio", "-o", "-H", "newc"], cwd=root,
                          input=("\n".join(names) + "\n").encode(), capture_output=True,
                          check=True)
    out.write_bytes(gzip.compress(proc.stdout, 6))


def build_guest(log=print) -> Guest:
    """Fetch and pack the guest into :data:`GUEST_DIR` (reused when already there: a
    newer Debian kernel is picked up after ``make clean``)."""
    stamp = GUEST_DIR / "stamp"
    want = f"v{GUEST_VERSION} {len(INIT)}"
    if stamp.is_file() and stamp.read_text().split(" ", 1)[1:] == [want]:
        version = stamp.read_text().split(" ", 1)[0]
        guest = Guest(GUEST_DIR / "vmlinux", GUEST_DIR / "initramfs.gz", version)
        if guest.kernel.is_file() and guest.initrd.is_file():
            return guest
    kernel_pkg = _kernel_package()
    version = kernel_pkg.removeprefix("linux-image-")
    guest = Guest(GUEST_DIR / "vmlinux", GUEST_DIR / "initramfs.gz", version)
    debs = LINUX_DIR / "debs"
    log(f"--- fetching {kernel_pkg} and {', '.join(USER_PACKAGES)} into {debs}")
    _apt_download([kernel_pkg, *USER_PACKAGES], debs)
    unpacked = LINUX_DIR / "unpacked"
    shutil.rmtree(unpacked, ignore_errors=True)
    unpacked.mkdir(parents=True)
    for deb in sorted(debs.glob("*.deb")):
        if deb.name.startswith("linux-image-") and not deb.name.startswith(kernel_pkg + "_"):
            continue
        _run(["dpkg-deb", "-x", str(deb), str(unpacked)])
    GUEST_DIR.mkdir(parents=True, exist_ok=True)
    _vmlinux(unpacked / "boot" / f"vmlinuz-{version}", guest.kernel)

    root = LINUX_DIR / "initramfs"
    shutil.rmtree(root, ignore_errors=True)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc/nvme",
              "lib64", "run"):
        (root / d).mkdir(parents=True, exist_ok=True)
    busybox = unpacked / "bin" / "busybox"
    _copy(busybox, root, "bin/busybox")
    lib_dirs = [unpacked / "lib/x86_64-linux-gnu", unpacked / "usr/lib/x86_64-linux-gnu"]
    for program in PROGRAMS:
        _copy(unpacked / program, root, program)
        for lib in _libraries(unpacked / program, lib_dirs):
            try:
                rel = "/" + str(lib.relative_to(unpacked))
            except ValueError:
                rel = str(lib)
            _copy(lib, root, rel)
            if "ld-linux" in lib.name:
                _copy(lib, root, f"lib64/{lib.name}")
    # nvme-cli wants a host NQN (and a host ID) to exist.
    (root / "etc/nvme/hostnqn").write_text(
        "nqn.2014-08.org.nvmexpress:uuid:6e766d65-636f-7265-0000-000000000001\n")
    (root / "etc/nvme/hostid").write_text("6e766d65-636f-7265-0000-000000000001\n")
    init = root / "init"
    init.write_text(INIT)
    init.chmod(0o755)
    _cpio(root, busybox, guest.initrd)
    stamp.write_text(f"{version} {want}")
    log(f"--- guest: {guest.kernel} ({version}), {guest.initrd} "
        f"({guest.initrd.stat().st_size // 1024} KiB)")
    return guest


if __name__ == "__main__":
    build_guest()

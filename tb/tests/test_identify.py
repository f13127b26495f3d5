"""Identify data and log pages: the builders against the spec's byte offsets (read with
struct, not through our layouts), and IdentifyRom in the Amaranth simulator against the
builders, every beat of every page."""

import itertools
import struct

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from model_host import u16, u32, u64
from nvmecore import CoreConfig
from nvmecore.nvme.identify import (
    CRITICAL_WARNING_TEMPERATURE,
    IdentifyPage,
    IdentifyRom,
    active_namespace_list,
    error_log,
    error_log_entry,
    eui64,
    firmware_slot_log,
    identify_controller,
    identify_namespace,
    identify_page,
    namespace_descriptors,
    nguid,
    serial_number,
    smart_log,
    subnqn,
)

pytestmark = pytest.mark.quick

ID_A = 0x0123_4567_89AB_CDEF
ID_B = 0xFEDC_BA98_7654_3210


def u8(buf, at):
    return buf[at]



# -- Builders against the spec [NVMe 1.4 Figure 247, Figure 245] ------------------------

def test_identify_controller_offsets():
    config = CoreConfig(pci_vendor_id=0x1B36, pci_subsystem_vendor_id=0x1AF4,
                        ieee_oui=0x5CD2E4)
    page = identify_controller(config, ID_A)
    assert len(page) == 4096
    assert u16(page, 0) == 0x1B36                              # VID
    assert u16(page, 2) == 0x1AF4                              # SSVID
    assert page[4:24] == b"NVC0123456789ABCDEF "               # SN
    assert page[24:64] == b"nvmecore NVMe controller".ljust(40)  # MN
    assert page[64:72] == b"0.1.0   "                          # FR
    assert u8(page, 72) == 6                                   # RAB
    assert page[73:76] == bytes([0xE4, 0xD2, 0x5C])            # IEEE, little-endian
    assert u8(page, 76) == 0                                   # CMIC
    assert u8(page, 77) == 7                                   # MDTS
    assert u16(page, 78) == 1                                  # CNTLID
    assert u32(page, 80) == 0x0001_0400                        # VER 1.4.0
    assert u32(page, 84) == 0                                  # RTD3R
    assert u32(page, 88) == 1_000_000                          # RTD3E
    assert u32(page, 92) == 0                                  # OAES
    assert u8(page, 111) == 1                                  # CNTRLTYPE: I/O
    assert u16(page, 256) == 0x0002                            # OACS: Format NVM
    assert u8(page, 258) == 3                                  # ACL
    assert u8(page, 259) == 3                                  # AERL
    assert u8(page, 260) == 0x03                               # FRMW
    assert u8(page, 261) == 0x04                               # LPA
    assert u8(page, 262) == 63                                 # ELPE
    assert u8(page, 263) == 0                                  # NPSS
    assert u16(page, 266) == 343                               # WCTEMP
    assert u16(page, 268) == 358                               # CCTEMP
    assert u8(page, 512) == 0x66                               # SQES
    assert u8(page, 513) == 0x44                               # CQES
    assert u32(page, 516) == 1                                 # NN
    assert u16(page, 520) == 0x000D                            # ONCS: Compare, DSM, WZ
    assert u16(page, 522) == 0                                 # FUSES
    assert u8(page, 524) == 0                                  # FNA
    assert u8(page, 525) == 0                                  # VWC
    assert u32(page, 536) == 0                                 # SGLS
    assert page[768:1024] == b"nqn.2026-11.org.nvmecore:sn.NVC0123456789ABCDEF".ljust(256, b"\0")
    assert u16(page, 2048) == 2500                             # PSD0 MP: 25 W
    assert u8(page, 2051) == 0                                 # PSD0 MXPS = 0: 0.01 W
    # Nothing else: the rest of the page is zero.
    known = [(0, 112), (256, 270), (512, 540), (768, 1024), (2048, 2050)]
    rest = bytearray(page)
    for start, end in known:
        rest[start:end] = bytes(end - start)
    assert not any(rest)


@pytest.mark.parametrize("lba_format, blocks", [(0, 2048), (1, 256)])
def test_identify_namespace_offsets(lba_format, blocks):
    config = CoreConfig(namespace_bytes=1 << 20, lba_format=lba_format)
    page = identify_namespace(config, ID_A)
    assert len(page) == 4096
    assert u64(page, 0) == blocks                              # NSZE
    assert u64(page, 8) == blocks                              # NCAP
    assert u64(page, 16) == blocks                             # NUSE
    assert u8(page, 24) == 0                                   # NSFEAT
    assert u8(page, 25) == 1                                   # NLBAF: two formats
    assert u8(page, 26) == lba_format                          # FLBAS
    assert u8(page, 33) == 0x09                                # DLFEAT: zeroes, WZ DEAC
    assert page[104:120] == bytes.fromhex("6e766d65636f7265 0123456789abcdef")  # NGUID
    assert page[120:128] == bytes.fromhex("000a35 6789abcdef")                 # EUI-64
    assert struct.unpack_from("<HBB", page, 128) == (0, 9, 0)   # LBAF0: 512 B
    assert struct.unpack_from("<HBB", page, 132) == (0, 12, 0)  # LBAF1: 4 KiB
    rest = bytearray(page)
    for start, end in [(0, 27), (33, 34), (104, 136)]:
        rest[start:end] = bytes(end - start)
    assert not any(rest)


def test_identity_from_device_id():
    config = CoreConfig()
    for make in (serial_number, subnqn, nguid, eui64, identify_controller,
                 identify_namespace, namespace_descriptors):
        assert make(config, ID_A) != make(config, ID_B), make.__name__
    for device_id in (0, ID_A, ID_B, (1 << 64) - 1):
        sn = serial_number(config, device_id)
        assert len(sn) == 20 and all(0x20 <= c < 0x7F for c in sn)
        assert sn == b"NVC" + f"{device_id:016X}".encode() + b" "
    assert len(subnqn(config, ID_A)) == 256
    assert nguid(config, ID_B) == bytes.fromhex("6e766d65636f7265 fedcba9876543210")
    assert eui64(config, ID_B) == bytes.fromhex("000a35 9876543210")
    # A full four-character prefix leaves no padding; an empty one leaves four spaces,
    # which the NQN drops.
    assert serial_number(CoreConfig(serial_prefix="ABCD"), ID_A) == b"ABCD0123456789ABCDEF"
    short = CoreConfig(serial_prefix="", subnqn_base="nqn.2014-08.org.example")
    assert serial_number(short, ID_A) == b"0123456789ABCDEF    "
    assert subnqn(short, ID_A).rstrip(b"\0") == b"nqn.2014-08.org.example:sn.0123456789ABCDEF"
    with pytest.raises(ValueError):
        serial_number(config, 1 << 64)


def test_active_namespace_list():
    config = CoreConfig()
    assert active_namespace_list(config, 0) == (1).to_bytes(4, "little") + bytes(4092)
    assert active_namespace_list(config, 1) == bytes(4096)
    assert active_namespace_list(config, 0xFFFF_FFFD) == bytes(4096)


def test_namespace_descriptors():
    config = CoreConfig()
    page = namespace_descriptors(config, ID_A)
    assert len(page) == 4096
    found, at = [], 0
    while page[at + 1]:                                        # NIDL = 0 ends the list
        nidt, nidl = page[at], page[at + 1]
        assert page[at + 2:at + 4] == b"\0\0"
        found.append((nidt, page[at + 4:at + 4 + nidl]))
        at += 4 + nidl
    assert found == [(1, eui64(config, ID_A)), (2, nguid(config, ID_A)), (4, b"\0")]
    assert not any(page[at:])


# -- Log pages [NVMe 1.4 §5.14.1] -------------------------------------------------------

def test_error_log():
    newest = dict(error_count=2, sqid=0, cid=0x1234, sct=1, sc=0x09, dnr=True, nsid=0)
    oldest = error_log_entry(error_count=1, sqid=3, cid=7, sct=0, sc=0x01, nsid=1)
    log = error_log([newest, oldest])
    assert len(log) == 4096
    assert u64(log, 0) == 2
    assert u16(log, 8) == 0                                    # SQID
    assert u16(log, 10) == 0x1234                              # CID
    assert u16(log, 12) == 0x09 << 1 | 1 << 9 | 1 << 15        # status, phase tag 0
    assert u16(log, 14) == 0xFFFF                              # parameter error location
    assert u64(log, 16) == 0                                   # LBA
    assert u32(log, 24) == 0                                   # NSID
    assert log[64:128] == oldest
    assert (u64(log, 64), u16(log, 72), u16(log, 74), u16(log, 76), u32(log, 88)) == \
        (1, 3, 7, 0x01 << 1, 1)
    assert not any(log[128:])
    many = [dict(error_count=n, sqid=0, cid=n, sct=0, sc=2) for n in range(70, 0, -1)]
    log = error_log(many)
    assert len(log) == 4096
    assert u64(log, 0) == 70 and u64(log, 63 * 64) == 7       # the 64 newest


def test_smart_log():
    log = smart_log(temperature=350, critical_warning=CRITICAL_WARNING_TEMPERATURE,
                    error_log_entries=5, power_on_hours=1 << 70)
    assert len(log) == 512
    assert u8(log, 0) == 0x02                                  # critical warning
    assert u16(log, 1) == 350                                  # composite temperature, K
    assert u8(log, 3) == 100                                   # available spare
    assert u8(log, 4) == 10                                    # threshold
    assert u8(log, 5) == 0                                     # percentage used
    assert int.from_bytes(log[128:144], "little") == 1 << 70   # power on hours
    assert int.from_bytes(log[176:192], "little") == 5         # error log entries
    assert not any(log[6:128]) and not any(log[192:])
    assert smart_log()[1:3] == (313).to_bytes(2, "little")


def test_firmware_slot_log():
    log = firmware_slot_log(CoreConfig(firmware_revision="v2"))
    assert len(log) == 512
    assert log[0] == 0x01                                      # AFI: running slot 1
    assert log[8:16] == b"v2      "                            # FRS1
    assert not any(log[1:8]) and not any(log[16:])


# -- IdentifyRom against the builders ---------------------------------------------------

def run_rom(config, device_ids):
    dut = IdentifyRom(config)
    beat_bytes = config.data_width // 8
    beats = 4096 // beat_bytes

    async def testbench(ctx):
        assert ctx.get(dut.data) == 0                          # reset value
        for device_id, lba_format in itertools.product(device_ids, (0, 1)):
            ctx.set(dut.device_id, device_id)
            ctx.set(dut.lba_format, lba_format)
            for page in IdentifyPage:
                expected = (identify_namespace(config, device_id, lba_format)
                            if page == IdentifyPage.NAMESPACE
                            else identify_page(config, page, device_id))
                ctx.set(dut.page, page)
                ctx.set(dut.en, 1)
                for beat in range(beats):
                    ctx.set(dut.beat, beat)
                    await ctx.tick()
                    chunk = expected[beat * beat_bytes:(beat + 1) * beat_bytes]
                    assert ctx.get(dut.data) == int.from_bytes(chunk, "little"), \
                        f"device_id {device_id:#x} page {page.name} beat {beat}"
        # With en low the output holds.
        held = ctx.get(dut.data)
        ctx.set(dut.en, 0)
        ctx.set(dut.page, IdentifyPage.CONTROLLER)
        ctx.set(dut.beat, 0)
        await ctx.tick().repeat(2)
        assert ctx.get(dut.data) == held

    sim = Simulator(dut)
    sim.add_clock(4e-9)
    sim.add_testbench(testbench)
    sim.run()
    return dut


@pytest.mark.parametrize("width", [64, 256, 512])
def test_identify_rom(width):
    dut = run_rom(CoreConfig(data_width=width), [ID_A, ID_B])
    # Only the beats holding SN, the NQN's serial, NGUID and EUI-64 depend on device_id.
    assert dut.device_id_beats <= {64: 11, 256: 5, 512: 4}[width]
    # ... and only the beat(s) holding NSZE, NCAP, NUSE and FLBAS on the LBA format.
    assert dut.format_beats <= {64: 4, 256: 1, 512: 1}[width]


def test_identify_rom_other_identity():
    config = CoreConfig(data_width=128, serial_prefix="", subnqn_base="nqn.2014-08.org.example",
                        ieee_oui=0xABCDEF, nguid_prefix=(1 << 64) - 1, lba_format=1)
    run_rom(config, [(1 << 64) - 1, 0x8000_0000_0000_0001])


@pytest.mark.parametrize("width", [128, 512])
def test_identify_rom_verilog(width):
    text = verilog.convert(IdentifyRom(CoreConfig(data_width=width)), name="identify_rom",
                           emit_src=False)
    assert "module identify_rom" in text
    assert f"output [{width - 1}:0] data" in text

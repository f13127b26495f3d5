"""The backends on their own in the Amaranth simulator (docs/backend.md): the RAM disk
and the AXI4 master (behind :class:`~nvmetb.backend.axi_rules.AxiMemoryModel`), driven by
the bench's initiator, which checks every transfer against the contract and the data
against a shadow namespace; the AXI4 rule checker on the AXI port. The same scenarios run
on the Verilog under cocotb in test_backends_rtl.py. Also: the bench's checkers catch
what they are there to catch."""

import pytest

from nvmecore import CoreConfig
from nvmecore.backend.axi import AxiBackend, AxiResp, max_burst_beats
from nvmecore.backend.interface import BackendOp, BackendStatus
from nvmecore.backend.ramdisk import RamDisk
from nvmetb.backend.amaranth_bench import AmaranthBackendBench
from nvmetb.backend.axi_rules import AXI_MEMORY_SETTINGS, AxiRules, AxiViolation
from nvmetb.backend.behaviour import (
    INITIATOR_SETTINGS,
    BackendInitiator,
    BackendViolation,
    Namespace,
)
from nvmetb.scenarios.backend import (
    abort_in_traffic,
    error_responses,
    flush_after_writes,
    random_traffic,
    throughput,
)

pytestmark = pytest.mark.quick

#: Namespace ranges whose AXI beats fail.
ERRORS = [(0x1000, 0x1200, AxiResp.SLVERR), (0x5000, 0x5400, AxiResp.DECERR)]


def config(width=256, outstanding=3):
    """A 32 KiB namespace (16 KiB at 64 bits) at 0x10000 in a 32-bit AXI space, three
    bursts in flight."""
    return CoreConfig(data_width=width, namespace_bytes=(16 if width == 64 else 32) << 10,
                      axi_addr_width=32, axi_base=0x1_0000, axi_id_width=3, axi_id=5,
                      axi_outstanding=outstanding)


def bench(block, width, pattern, errors=(), seed=0, outstanding=3):
    cfg = config(width, outstanding)
    memory = AXI_MEMORY_SETTINGS["busy" if pattern == "busy" else "fast"]
    return AmaranthBackendBench(block(cfg), cfg, INITIATOR_SETTINGS[pattern],
                                axi_settings=memory, errors=errors, seed=seed)


# -- The RAM disk ---------------------------------------------------------------------------

def test_ramdisk_throughput():
    """4 KiB READs and WRITEs at once: a beat per cycle each way, back to back; the first
    read beat 3 cycles after the command, dones 2 to 3 cycles after the data."""
    result = bench(RamDisk, 256, "fast").run(throughput)
    assert result["read_latency"] == 3
    assert result["read_done_after_data"] <= 3 and result["write_done_after_data"] <= 3


@pytest.mark.parametrize(("width", "pattern"), [(64, "fast"), (256, "busy")])
def test_ramdisk_random(width, pattern):
    """Random mixes, then FLUSHes right behind WRITEs."""
    async def scenario(bench):
        await random_traffic(bench, count=20, seed=width, max_bytes=4096)
        await flush_after_writes(bench, rounds=2, seed=width)
    bench(RamDisk, width, pattern, seed=width).run(scenario)


#: One-sector commands, many FLUSHes and ZEROs: dones come as fast as the data moves.
SHORT = {"max_bytes": 512, "weights": {BackendOp.READ: 3, BackendOp.WRITE: 3,
                                       BackendOp.ZERO: 2, BackendOp.FLUSH: 2}}


@pytest.mark.parametrize("block", [RamDisk, AxiBackend], ids=["ramdisk", "axi"])
def test_dones_held_back(block):
    """Short commands while done.ready is mostly low: every engine's done waits in its
    register and no data beat or done may be lost or repeated."""
    b = bench(block, 256, "slow_done", seed=6)
    b.run(random_traffic, count=40, seed=6, **SHORT)


def test_ramdisk_abort():
    bench(RamDisk, 256, "busy", seed=2).run(abort_in_traffic, aborts=3, count=12, seed=2,
                                            max_bytes=4096)


# -- The AXI4 master -------------------------------------------------------------------------

@pytest.mark.parametrize("width", [64, 256])
def test_axi_throughput(width):
    """A beat per cycle each way, back to back across bursts and commands (at 64 bits a
    4 KiB command is two 2 KiB bursts, AxLEN being 8 bits)."""
    b = bench(AxiBackend, width, "fast")
    b.run(throughput, commands=2 if width == 64 else 4)
    assert b.rules.bursts["ar"] == b.rules.bursts["aw"] == (4 if width == 64 else 4)


@pytest.mark.parametrize("width", [64, 256])
def test_axi_burst_split(width):
    """Bursts as long as allowed (4 KiB, or 256 beats), aligned to their own size, so
    none crosses 4 KiB; each command's bursts in order."""
    b = bench(AxiBackend, width, "fast")
    commands = [(0x0000, 0x1000), (0x0200, 0x1400), (0x0E00, 0x0400), (0x1A00, 0x0600),
                (0x1600, 0x0200)]

    async def scenario(bench):
        for addr, length in commands:
            bench.initiator.read(addr, length)
            bench.initiator.write(0x2000 + addr, bytes(length))
        await bench.wait_idle()
    b.run(scenario)

    slot = max_burst_beats(width) * width // 8
    expect = {"ar": [], "aw": []}
    for addr, length in commands:
        for ax, base in (("ar", 0), ("aw", 0x2000)):
            a, end = base + addr, base + addr + length
            while a < end:
                n = min(end, (a // slot + 1) * slot) - a
                expect[ax].append((config(width).axi_base + a, n // (width // 8)))
                a += n
    for ax in ("ar", "aw"):
        got = [(addr, beats) for channel, addr, beats in b.rules.history if channel == ax]
        assert got == expect[ax]


@pytest.mark.parametrize(("width", "pattern", "outstanding"), [
    pytest.param(64, "fast", 1, marks=pytest.mark.slow),     # the quick tier's budget
    (256, "busy", 3)])
def test_axi_random(width, pattern, outstanding):
    """Random mixes, then FLUSHes behind WRITEs; at 64 bits with one burst in flight per
    direction, at 256 bits with three, every channel of the memory stalling at random
    (the limit must be reached)."""
    b = bench(AxiBackend, width, pattern, seed=width, outstanding=outstanding)
    async def scenario(bench):
        await random_traffic(bench, count=12 if width == 64 else 20, seed=width,
                             max_bytes=4096)
        await flush_after_writes(bench, rounds=2 if width == 64 else 4, seed=width)
    b.run(scenario)
    assert b.rules.max_reads == b.rules.max_writes == outstanding


def test_axi_errors():
    """SLVERR and DECERR ranges: the READs, WRITEs and ZEROs touching them end ERROR
    (READs with every beat), the others OK."""
    b = bench(AxiBackend, 256, "busy", errors=ERRORS, seed=4)
    b.run(error_responses, count=12, seed=4)


def test_axi_abort():
    b = bench(AxiBackend, 256, "busy", seed=5)
    b.run(abort_in_traffic, aborts=3, count=10, seed=5, max_bytes=4096)
    assert b.rules.null_beats, "no abort cut a write burst short"


# -- The checkers catch what they are for ------------------------------------------------------

def _initiator(**kw):
    return BackendInitiator(64, Namespace(4096), **kw)


def _idle(ini, n=1, **kw):
    for _ in range(n):
        ini.step(**{"cmd_ready": False, "wdata_ready": False, "rdata_valid": False,
                    "rdata": None, "done_valid": False, "done": None, **kw})


def _read_accepted(ini):
    req = ini.read(0, 512)
    _idle(ini)                                      # offered
    _idle(ini, cmd_ready=True)                      # accepted
    return req


def test_initiator_catches_rdata_faults():
    ini = _initiator()
    with pytest.raises(BackendViolation, match="no READ in flight"):
        _idle(ini, rdata_valid=True, rdata=(0, 0))
    ini = _initiator()
    _read_accepted(ini)
    with pytest.raises(BackendViolation, match="has last=1"):
        _idle(ini, rdata_valid=True, rdata=(0, 1))     # beat 0 of 8 marked last
    ini = _initiator()
    _read_accepted(ini)
    ini._drive = ini._drive.__class__(rdata_ready=False, done_ready=False)
    _idle(ini, rdata_valid=True, rdata=(1, 0))          # offered, not taken
    ini._drive = ini._drive.__class__(rdata_ready=False)
    with pytest.raises(BackendViolation, match="payload changed"):
        _idle(ini, rdata_valid=True, rdata=(2, 0))


def test_initiator_catches_done_faults():
    ini = _initiator()
    with pytest.raises(BackendViolation, match="no command in flight"):
        _idle(ini, done_valid=True, done=(0, 0))
    ini = _initiator()
    req = _read_accepted(ini)
    with pytest.raises(BackendViolation, match="before its last data beat"):
        _idle(ini, done_valid=True, done=(req.tag, 0))
    ini = _initiator()
    flush = ini.flush()
    _idle(ini)
    _idle(ini, cmd_ready=True)
    ini._drive = ini._drive.__class__(done_ready=True)
    with pytest.raises(BackendViolation, match="expected OK"):
        _idle(ini, done_valid=True, done=(flush.tag, BackendStatus.ERROR.value))
    ini = _initiator()
    ini.abort(2)
    _idle(ini)
    ini._drive = ini._drive.__class__(done_ready=True, abort=True)
    with pytest.raises(BackendViolation, match="while abort was high"):
        _idle(ini, done_valid=True, done=(0, 0))


def _axi(**kw):
    s = {name: 0 for name in (
        "awid", "awaddr", "awlen", "awsize", "awburst", "awlock", "awcache", "awprot",
        "awqos", "awvalid", "awready", "wdata", "wstrb", "wlast", "wvalid", "wready", "bid",
        "bresp", "bvalid", "bready", "arid", "araddr", "arlen", "arsize", "arburst",
        "arlock", "arcache", "arprot", "arqos", "arvalid", "arready", "rid", "rdata",
        "rresp", "rlast", "rvalid", "rready")}
    s.update(arsize=3, arburst=1, arcache=0b0011, awsize=3, awburst=1, awcache=0b0011)
    s.update(kw)
    return s


def test_axi_rules_catch_faults():
    with pytest.raises(AxiViolation, match="crossing a 4 KiB boundary"):
        AxiRules(64).step(_axi(arvalid=1, arready=1, araddr=0xF80, arlen=31))
    with pytest.raises(AxiViolation, match="ID 0x1"):
        AxiRules(64, axi_id=0).step(_axi(arvalid=1, arready=1, arid=1))
    with pytest.raises(AxiViolation, match="before the AW"):
        AxiRules(64).step(_axi(wvalid=1, wstrb=0xFF))
    rules = AxiRules(64)
    rules.step(_axi(awvalid=1, awready=1, awlen=1))
    with pytest.raises(AxiViolation, match="WLAST=1"):
        rules.step(_axi(wvalid=1, wready=1, wstrb=0xFF, wlast=1))
    rules = AxiRules(64)
    rules.step(_axi(arvalid=1, araddr=0x100))
    with pytest.raises(AxiViolation, match="payload changed"):
        rules.step(_axi(arvalid=1, araddr=0x200))
    rules = AxiRules(64, outstanding=1)
    rules.step(_axi(arvalid=1, arready=1))
    with pytest.raises(AxiViolation, match="2 read bursts in flight"):
        rules.step(_axi(arvalid=1, arready=1))

"""cocotb tests of the backends on their own, on the generated Verilog: the RAM disk
(``ramdisk_*``) and the AXI4 master behind cocotbext-axi's RAM (``axi_*``). Run through
pytest (``test_backends_rtl.py``), which builds one top per backend and runs the tests of
its prefix. The scenarios are :mod:`nvmetb.scenarios.backend`'s, the same as the quick
tier runs in the Amaranth simulator; every transfer is checked by the bench's initiator
and, on AXI, by the AXI4 rule checker.
"""

import logging

import cocotb

from nvmecore.backend.axi import AxiResp
from nvmecore.backend.interface import BackendOp
from nvmetb.backend.behaviour import INITIATOR_SETTINGS
from nvmetb.backend.cocotb_bench import CocotbBackendBench
from nvmetb.scenarios.backend import (
    abort_in_traffic,
    error_responses,
    flush_after_writes,
    random_traffic,
    throughput,
)
from nvmetb.sim import config_from_env

logging.getLogger("tb").setLevel(logging.INFO)

#: Back-pressure per pattern: initiator settings and the AXI RAM's pause probability.
PATTERNS = {"fast": ("fast", 0.0), "busy": ("busy", 0.3)}

#: One-sector commands, many FLUSHes and ZEROs (the *_dones_held_back tests).
SHORT_MIX = {BackendOp.READ: 3, BackendOp.WRITE: 3, BackendOp.ZERO: 2, BackendOp.FLUSH: 2}

#: Namespace ranges whose AXI beats fail (axi_errors).
ERRORS = [(0x2000, 0x2200, AxiResp.SLVERR), (0x5000, 0x6000, AxiResp.DECERR)]


async def _bench(dut, pattern="fast", errors=(), seed=0):
    settings, pause = PATTERNS[pattern]
    return await CocotbBackendBench(dut, config_from_env(), INITIATOR_SETTINGS[settings],
                                    pause=pause, errors=errors, seed=seed).start()


def _check_axi(bench, pattern):
    rules = bench.rules
    if rules is None:
        return
    bench.log.info("AXI: %s bursts, %s beats, at most %d reads and %d writes in flight, "
                   "errors %s, %d null-strobe beats", rules.bursts, rules.beats,
                   rules.max_reads, rules.max_writes, rules.errors, rules.null_beats)
    if rules is not None and pattern == "busy":
        limit = bench.config.axi_outstanding
        assert rules.max_reads == limit and rules.max_writes == limit, \
            "the traffic never reached the outstanding-burst limit"


async def _random(dut, pattern):
    bench = await _bench(dut, pattern, seed=len(pattern))
    await random_traffic(bench, count=24, seed=len(pattern))
    await flush_after_writes(bench, rounds=3, seed=len(pattern))
    if bench.rules is not None:
        _check_axi(bench, pattern)
    bench.stop()


async def _throughput(dut):
    bench = await _bench(dut)
    await throughput(bench)
    bench.stop()


async def _dones_held_back(dut):
    bench = await CocotbBackendBench(dut, config_from_env(), INITIATOR_SETTINGS["slow_done"],
                                     seed=6).start()
    await random_traffic(bench, count=30, seed=6, max_bytes=512, weights=SHORT_MIX)
    bench.stop()


async def _abort(dut):
    bench = await _bench(dut, "busy", seed=7)
    await abort_in_traffic(bench, aborts=3, count=10, seed=7)
    bench.stop()


@cocotb.test()
@cocotb.parametrize(pattern=list(PATTERNS))
async def ramdisk_random(dut, pattern):
    """Random READ / WRITE / ZERO / FLUSH mixes against the shadow namespace, then
    FLUSHes behind WRITEs."""
    await _random(dut, pattern)


@cocotb.test()
async def ramdisk_throughput(dut):
    """4 KiB READs and WRITEs at once: one beat per cycle each way."""
    await _throughput(dut)


@cocotb.test()
async def ramdisk_dones_held_back(dut):
    """One-sector commands while done.ready is mostly low: nothing lost or repeated."""
    await _dones_held_back(dut)


@cocotb.test()
async def ramdisk_abort(dut):
    """abort in the middle of traffic; later commands work, the namespace is kept."""
    await _abort(dut)


@cocotb.test()
@cocotb.parametrize(pattern=list(PATTERNS))
async def axi_random(dut, pattern):
    """Random mixes through cocotbext-axi's RAM, every channel paused at random (busy):
    checked against the shadow, the RAM's memory and the AXI4 rules; then FLUSHes
    behind WRITEs, each after the B responses of the writes before it."""
    await _random(dut, pattern)


@cocotb.test()
async def axi_throughput(dut):
    """4 KiB READs and WRITEs at once, nothing paused: one beat per cycle each way."""
    await _throughput(dut)


@cocotb.test()
async def axi_dones_held_back(dut):
    """One-sector commands while done.ready is mostly low: nothing lost or repeated."""
    await _dones_held_back(dut)


@cocotb.test()
async def axi_errors(dut):
    """SLVERR and DECERR on two address ranges: the commands touching them end ERROR
    (READs still deliver every beat), the others OK."""
    bench = await _bench(dut, "busy", errors=ERRORS, seed=3)
    await error_responses(bench, count=16, seed=3)
    bench.stop()


@cocotb.test()
async def axi_abort(dut):
    """abort while bursts are in flight: they finish (W beats sent with WSTRB 0, R and B
    taken and dropped), nothing hangs, the AXI4 rules hold, later commands work."""
    await _abort(dut)

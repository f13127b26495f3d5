"""Quick tier: the NVM I/O scenarios (``nvmetb.scenarios.io``) with the host driver on the
reference model alone (``ModelTransport``: pure Python, host memory with its checks
behind the model's DMA). The same scenarios run on the RTL benches with the model in
lock step."""

import logging

import pytest
from amaranth.lib import data

from nvmecore import CoreConfig
from nvmecore.admin_layouts import FeatureId
from nvmecore.layouts import Cqe
from nvmetb.bench.harness import Mismatch
from nvmetb.bench.model_backend import run_lockstep_model
from nvmetb.host import pattern
from nvmetb.hostmem import DeviceWrite
from nvmetb.scenarios.io import IO_SCENARIOS, MEDIA_SCENARIOS, io_bring_up
from nvmetb.transports.model import run_model_scenario

pytestmark = pytest.mark.quick

CONFIG = CoreConfig(io_queues=4, max_queue_entries=64, data_width=128)
CONFIG_4K = CoreConfig(io_queues=4, max_queue_entries=64, data_width=128, lba_format=1)
SCENARIOS = {**IO_SCENARIOS, **MEDIA_SCENARIOS}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_io_scenario(scenario):
    run_model_scenario(SCENARIOS[scenario], CONFIG)


@pytest.mark.parametrize("scenario", ["io_status_paths", "prp_layouts", "smart_and_error_log",
                                      "error_in_traffic"])
def test_io_scenario_4k(scenario):
    """The scenarios whose sizes depend on the LBA size, formatted with 4 KiB blocks."""
    run_model_scenario(SCENARIOS[scenario], CONFIG_4K)


@pytest.mark.parametrize("seed", [2, 3])
def test_data_integrity_seeds(seed, caplog):
    caplog.set_level(logging.INFO, "tb")
    host, _ = run_model_scenario(IO_SCENARIOS["data_integrity"], CONFIG, seed=seed, count=150)
    assert host.io_stats.max_in_flight == 32


# -- The bench transport's comparison, with a second model standing in for the RTL -----

LOCKSTEP = CoreConfig(io_queues=4, max_queue_entries=64, data_width=128, debug=True)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_io_scenario_lockstep(scenario):
    """Every scenario through BenchTransport (CQ entries, data buffers, MSI-X messages and
    the namespace image compared), the RTL played by a second model."""
    run_lockstep_model(SCENARIOS[scenario], LOCKSTEP)


def _cq_writes(bench, name):
    """Indices into the stand-in's DMA write log of the CQ entries it wrote to ``name``."""
    buffer = next(b for b in bench.memory.buffers if b.name == name)
    return [i for i, w in enumerate(bench.memory.writes)
            if len(w.data) == 16 and buffer.contains(w.addr)]


def _swap(bench, i, j):
    writes = bench.memory.writes
    a, b = writes[i], writes[j]
    writes[i], writes[j] = DeviceWrite(a.addr, b.data), DeviceWrite(b.addr, a.data)


def _patch(bench, i, field):
    """Flip the lowest bit of a field (a path into the Cqe layout) of CQ entry write
    ``i``."""
    w = bench.memory.writes[i]
    offset, shape = 0, Cqe
    for name in field:
        item = data.Layout.cast(shape)[name]
        offset, shape = offset + item.offset, item.shape
    raw = int.from_bytes(w.data, "little") ^ 1 << offset
    bench.memory.writes[i] = DeviceWrite(w.addr, raw.to_bytes(len(w.data), "little"))


async def _traffic(host, bench):
    """Sixteen Reads on one queue, all in flight, then a few admin commands."""
    await io_bring_up(host, bench, entries=8)
    cmds = [await host.submit_read(1, i, 1) for i in range(12)]
    await host.io_wait_all(cmds, check=True)
    await host.get_features(FeatureId.NUMBER_OF_QUEUES)


def test_compare_takes_io_completions_in_any_order():
    def disturb(bench):
        i, j = _cq_writes(bench, "cq1")[:2]                   # same lap, same phase
        _swap(bench, i, j)
    run_lockstep_model(_traffic, LOCKSTEP, disturb=disturb)


@pytest.mark.parametrize("how", ["admin order", "phase", "status", "cid", "dw0", "missing"])
def test_compare_fails(how):
    def disturb(bench):
        io = _cq_writes(bench, "cq1")
        if how == "admin order":
            i, j = _cq_writes(bench, "acq")[-2:]
            _swap(bench, i, j)
        elif how == "phase":
            _swap(bench, io[0], io[-1])                       # across a lap of 8 entries
        elif how == "status":
            _patch(bench, io[3], ("status", "sc"))
        elif how == "cid":
            _patch(bench, io[3], ("cid",))
        elif how == "dw0":
            _patch(bench, io[3], ("dw0",))
        else:
            del bench.memory.writes[io[5]]
    with pytest.raises(Mismatch):
        run_lockstep_model(_traffic, LOCKSTEP, disturb=disturb)


def test_compare_checks_the_namespace():
    def disturb(bench):
        bench.core.dut.model.namespace[700] ^= 1
    with pytest.raises(Mismatch, match="namespace"):
        run_lockstep_model(_traffic, LOCKSTEP, disturb=disturb)


def test_compare_skips_undefined_namespace_bytes():
    async def scenario(host, bench):
        await io_bring_up(host, bench)
        cmd = await host.submit_write(1, 4, pattern("undefined", 8 * 512), ring=False,
                                      name="failing")
        bench.fail_reads(cmd.prp.pieces[-1][0], cmd.prp.pieces[-1][0] + 1)
        await host.ring_sq(1)
        await host.io_wait(cmd)

    def disturb(bench):
        bench.core.dut.model.namespace[4 * 512 + 100] ^= 1    # in the undefined blocks
    run_lockstep_model(scenario, LOCKSTEP, disturb=disturb)


def test_compare_with_nothing_to_compare_fails():
    async def scenario(host, bench):
        await io_bring_up(host, bench)
        bench.forget_io(admin=True)
    with pytest.raises(Mismatch, match="nothing to compare"):
        run_lockstep_model(scenario, LOCKSTEP)

"""The conformance scenarios (``nvmetb.conformance``) on the RTL: at core level (the
host driver on the bench transport, the reference model in lock step and compared after
every scenario that passed), and through the cocotbext-pcie stack (``top=usp``). One
cocotb test per scenario, all in one simulation; each test resets the core, and the
namespace (which survives a reset in the RAM disk) is carried over in the model.
Results go to the JSON file named by ``NVMETB_CONFORMANCE_RESULTS``; a scenario's
failure is a result, not a failed cocotb test. Run through ``nvmetb.conformance``
(``make conformance``, ``test_conformance.py``)."""

import json
import logging
import os

import cocotb

from nvmetb.conformance import SCENARIOS, Result, run_scenario
from nvmetb.conformance.targets import RESULTS_ENV, SELECT_ENV, TARGET_ENV, facts
from nvmetb.sim import config_from_env

logging.getLogger("tb").setLevel(logging.WARNING)

_results: list[Result] = []
_store = []                 # the model's namespace store, carried from test to test


def _save():
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "w") as f:
            json.dump([r.as_dict() for r in _results], f, indent=1)


async def _core(dut, scn, target):
    from nvmetb.bench.cocotb_backend import CocotbBackend, probe_namespace
    from nvmetb.bench.harness import PATTERNS, CheckedCore
    from nvmetb.bench.transport import BenchTransport
    from nvmetb.dma.behaviour import DMA_SETTINGS
    from nvmetb.dma.cocotb_ports import CocotbDma
    from nvmetb.host import NvmeHost
    from nvmetb.hostmem import HostMemory

    config = config_from_env()
    backend = CocotbBackend(dut, config, PATTERNS["fast"], sum(scn.name.encode()))
    memory = HostMemory(max_payload_size=0, max_read_request_size=2)
    dma = CocotbDma(dut, memory, DMA_SETTINGS["fast"], width=config.data_width,
                    edges=backend.edges)
    await backend.start(dma=False)
    dma.start()

    async def namespace():
        return await probe_namespace(dut, config)
    bench = BenchTransport(CheckedCore(backend), memory, namespace=namespace)
    if _store:
        # The RAM disk keeps its contents over the reset: the model starts from them (and
        # the LBA format the last scenario left).
        store = _store[0]
        store.data[:] = await probe_namespace(dut, config)
        store.undefined.clear()
        store.clear_faults()
        bench.core.model.store = store
    host = NvmeHost(bench, poll_us=0.1, command_timeout_us=200)

    async def after():
        # The model in lock step: CQ entries, data, MSI-X messages, the namespace.
        from nvmetb.bench.harness import Mismatch

        if any(bench.core.model.posted.values()):
            await bench.compare()
        if bench.core.dut.intx() != bench.core.model.intx:
            raise Mismatch(f"INTx: RTL {bench.core.dut.intx()}, model "
                           f"{bench.core.model.intx}")

    try:
        return await run_scenario(scn, host, target, {"fail_reads", "intx"}, facts(config),
                                  after)
    finally:
        _store[:] = [bench.core.model.store]
        dma.stop()
        backend.stop()


async def _pcie(dut, scn, target):
    from nvmetb.host import NvmeHost
    from nvmetb.transports.pcie import PcieStack

    config = config_from_env()
    # cocotbext-pcie logs every frame at INFO: the table needs none of it.
    logging.getLogger(f"cocotb.{dut._name}").setLevel(logging.WARNING)
    stack = PcieStack(dut, config)
    transport = await stack.enumerate()
    host = NvmeHost(transport, poll_us=0.2, command_timeout_us=200)
    async def after():
        # The hard IP's rules on the link (TLP framing, tags, the INTx handshake).
        if stack.link.violations:
            from nvmetb.bench.harness import Mismatch
            raise Mismatch("hard-IP rules broken:\n  " + "\n  ".join(stack.link.violations))

    return await run_scenario(scn, host, target, {"intx", "fail_reads"}, facts(config),
                              after)


def _make_test(scn):
    async def test(dut):
        target = os.environ.get(TARGET_ENV, "rtl")
        run = _pcie if target.startswith("pcie") else _core
        result = await run(dut, scn, target)
        _results.append(result)
        _save()
        logging.getLogger("tb").warning("conformance %s on %s: %s %s", scn.name, target,
                                        result.result, result.detail)
    test.__name__ = test.__qualname__ = scn.name
    test.__doc__ = scn.doc
    return cocotb.test(test)


_selected = os.environ.get(SELECT_ENV)
for _name, _scn in SCENARIOS.items():
    if _selected is None or _name in _selected.split(","):
        globals()[_name] = _make_test(_scn)

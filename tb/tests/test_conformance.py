"""The conformance suite in CI (``make conformance`` is the full run that writes
docs/conformance.md): every scenario of ``nvmetb.conformance`` on the reference model,
on QEMU's NVMe device, on the Verilog at core level under Icarus and Verilator (the
build test_core_rtl makes, so nothing new is compiled), and the scenarios marked for it
through the cocotbext-pcie stack under Icarus. A scenario that fails anywhere fails its
target's test; *differ* (a stated, justified QEMU difference) and *skipped* (a stated
reason) do not. Each test prints its column of the table."""

import pytest

from nvmetb.conformance import SCENARIOS
from nvmetb.conformance.report import table_text
from nvmetb.conformance.targets import run_model, run_qemu, run_rtl
from nvmetb.sim import run_dir
from nvmetb.transports.qemu import qemu_binary


def _check(results, minimum):
    print(table_text(results))
    failed = [f"{r.scenario}: {r.detail}" for r in results if r.result == "fail"]
    assert not failed, "conformance failures:\n  " + "\n  ".join(failed)
    ran = [r for r in results if r.result in ("pass", "differ")]
    # A run that compares nothing is not a pass.
    assert len(ran) >= minimum, f"only {len(ran)} scenarios ran"
    assert all(r.checks for r in ran)


def test_scenario_count():
    assert len(SCENARIOS) >= 40


@pytest.mark.quick
def test_conformance_model():
    _check(run_model(), len(SCENARIOS))


def test_conformance_qemu():
    if qemu_binary() is None:
        pytest.skip("qemu-system-x86_64 not installed (make setup installs qemu-system-x86)")
    results = run_qemu()
    _check(results, len(SCENARIOS) - 5)


@pytest.mark.parametrize("sim", [pytest.param("icarus", marks=pytest.mark.icarus),
                                 pytest.param("verilator", marks=pytest.mark.verilator)])
def test_conformance_rtl(sim, request):
    results = run_rtl(f"rtl-{sim}", work_dir=run_dir(request.node.nodeid))
    _check(results, len(SCENARIOS))


@pytest.mark.icarus
def test_conformance_pcie(request):
    names = [n for n, s in SCENARIOS.items() if s.pcie_ci]
    results = run_rtl("pcie-icarus", names, work_dir=run_dir(request.node.nodeid))
    _check(results, len(names) - 2)

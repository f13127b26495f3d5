"""How the host driver reaches a controller beyond the core-level bench: ``pcie`` (the
cocotbext-pcie root complex and UltraScale+ hard-IP model around the FPGA top) and
``model`` (the reference model alone, pure Python, for the quick tier)."""

"""nvmetb: verification kit for nvmecore (reference model, host driver, bench models)."""

"""Permission-matrix rows, one module per feature."""

"""Monitoring reads that are more than one ORM call, one module per feature (traffic, quality, slo, drift)."""

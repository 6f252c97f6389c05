"""Dataset import internals: sniffing uploads, streaming row readers, row validation, bulk writers.

``labeling.services.imports`` composes these into the public import API; nothing here decides about
permissions, jobs or HTTP.
"""

"""The ML core: torch + transformers, plain data in, dataclasses out. Never imports Django."""

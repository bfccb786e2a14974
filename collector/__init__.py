"""OneCloud Analytics collector: the public, de-identifying beacon endpoint."""

__version__ = "0.1.0"

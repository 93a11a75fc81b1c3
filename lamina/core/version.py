"""The version of lamina."""

__version__ = "0.1.0"

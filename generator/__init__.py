"""p2pgen: one self-contained Python script per point-to-point API integration."""

__version__ = "0.1.0"

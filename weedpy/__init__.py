"""weedpy: a Python SeaweedFS volume server that can be adopted one endpoint at a time."""

__version__ = "0.1.0"

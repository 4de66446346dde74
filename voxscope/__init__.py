"""voxscope: a self-hosted server for the DashScope speech APIs on local open models."""

__version__ = "0.1.0"

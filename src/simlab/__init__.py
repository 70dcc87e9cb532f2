"""SimLab: scientific simulations for people and AI agents."""

__version__ = "0.1.0"

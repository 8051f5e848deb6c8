"""lmolt-hub: a Hub-centric model zoo for machine language-molecule translation."""

__version__ = "0.1.0"

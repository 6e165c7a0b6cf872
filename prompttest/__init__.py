"""prompttest: prompt regression testing with snapshots and a CI gate."""

__version__ = "0.1.0"

"""An example trainlab plugin: one workload and one optimizer (see docs/architecture.md)."""

"""The submission files are data, not tests: pytest (with --doctest-modules) must not import
them (some are broken on purpose, most import ``algoperf``)."""

collect_ignore_glob = ["submissions/*"]

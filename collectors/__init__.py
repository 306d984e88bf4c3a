"""Built-in collectors. Each depends only on the public contract in :mod:`tracker.plugins`."""

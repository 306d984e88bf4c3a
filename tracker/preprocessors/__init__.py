"""Built-in preprocessors, registered as entry points like any plugin."""

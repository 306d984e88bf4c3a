"""Field handling: field types and schemas, the loader and its checks, the event mapping."""

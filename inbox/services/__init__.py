"""Service objects: one concern each, used by the web layer, the CLI and the event consumer."""

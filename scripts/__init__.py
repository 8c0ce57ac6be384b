"""Project scripts (the demo launcher)."""

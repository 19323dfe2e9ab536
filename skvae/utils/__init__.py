"""Internal helpers; nothing here is public API."""

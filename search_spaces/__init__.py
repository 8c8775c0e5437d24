"""Per-model seed configs, presets and (later) search spaces and the remedy ladder, as data."""

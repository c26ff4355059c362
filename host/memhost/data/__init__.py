"""Data shipped with memhost (literature.toml: the published devices of the literature map)."""

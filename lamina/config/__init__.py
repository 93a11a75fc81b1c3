"""Typed, validated configuration: YAML + overrides → Config (lamina/config/loading.py), whose class and the
registries it names are assembled in lamina/config/schema.py."""

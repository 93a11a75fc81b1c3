"""The bottom layer: errors, the registry, the options base class. It imports nothing else of lamina."""

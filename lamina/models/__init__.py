"""Model families: each a typed options class (lamina/models/options.py, the list of built-in families) plus a
builder that sizes a plain nn.Module from the data (`build_model`, lamina/models/registry.py)."""

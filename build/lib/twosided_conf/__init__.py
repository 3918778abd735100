"""The model's YAML configuration, installed as the package ``twosided_conf``.

pyproject.toml maps this folder to ``twosided_conf`` (package-dir) and ships
its YAML as package data, so a non-editable install finds conf/ through
``importlib.resources`` rather than through the source tree.
"""

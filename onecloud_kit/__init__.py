"""Conventions the three packages share: typed settings (:mod:`onecloud_kit.settings`) and the CLI (:mod:`.cli`).

Standard library only, and it imports none of ``collector``, ``aggregator`` or
``dashboards``: each of them may import it without taking another's
dependencies along (checked by import-linter and tests/test_boundaries.py).
"""

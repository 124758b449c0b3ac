"""Evaluation: a checkpoint and a split -> predictions, metrics, matrices and the paper's tables.

`evaluate` decodes greedily in batches and scores through `medr1.rewards`; `matrix` runs the cells of
a cross-domain matrix; `tables` turns cells into tables and heatmaps beside the published numbers.
Imports `sources`, `data` and `rewards`.
"""

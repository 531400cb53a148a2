"""The month-end phases: plain functions ``fn(ctx, **frames) -> {dataset: frame}`` (tasks/pipeline/graph.py
declares what each reads and writes; tasks/pipeline/datasets.py loads and saves)."""

"""bench/report.py's parts: the template (template), figures from a results
directory (figures) and one module per group of report sections (latency,
costs, capacity, verdicts). Python 3 standard library only."""

"""The diagnosis core: log reading, signals, rules, diagnosis, prescription and the stop policy. Pure functions
over a run's per-epoch history (numpy and pandas only): no torch, Ray, Optuna or MLflow, and nothing from the rest
of tuner/. tests/test_layering.py checks it from the source and imports it with those frameworks blocked."""

"""Models, data, the training loop and per-epoch metrics of gantune; nothing here imports Ray or MLflow."""

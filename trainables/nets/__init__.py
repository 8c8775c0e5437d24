"""Generator and critic networks of every registered model."""

"""Insight into a trained model and its training: explanations of predictions (checked for faithfulness) and the
training doctor. This layer sits above the artifacts and below the config: it is handed a model, its data and its
records (the run layer and the pipeline gather them), and it never reads a config."""

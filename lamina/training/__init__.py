"""Training: the fit loop, its callbacks and step functions, losses, metrics, optimizers, schedules."""

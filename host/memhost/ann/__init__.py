"""ANN weight-transfer benchmark: datasets, models, quantization/mapping, error models, evaluation.

The MLP path needs only numpy; the CNN and user-model paths need torch (the `ann` extra).
"""

"""seqadd training stage: data, the Keras model, training and its reports."""

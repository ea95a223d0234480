"""seqadd export stage: Keras model -> self-describing ONNX file, behind a parity gate."""

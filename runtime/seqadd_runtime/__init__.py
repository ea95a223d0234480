"""seqadd runtime: answers addition queries with an exported ONNX model (numpy + onnxruntime)."""

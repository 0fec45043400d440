"""Protobuf modules generated from this folder's .proto files (SegServing's own, wire-compatible with Paddle
Serving's GeneralModelConfig and GeneralModelService, plus segserving.v1.Segmentation). Regenerate with
`pip install grpcio-tools` and, from the repository root,
`python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. segcore/proto/*.proto` (add
`--grpc_python_out=. segcore/proto/general_model_service.proto` for the client stub the tests use)."""

"""Generated gRPC stubs for protos/ensemble-service.proto (hack/gen_protos.sh)."""

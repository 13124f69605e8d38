#!/usr/bin/env bash
# Regenerate the Python gRPC stubs from protos/ensemble-service.proto.
# Usage: hack/gen_protos.sh [OUT_DIR]   (default: controller/proto)
# The grpc stub's import of the message module is made package-relative so the
# stubs work as the `controller.proto` package.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/controller/proto}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
mkdir -p "$OUT"
"$PYTHON" -m grpc_tools.protoc -I "$ROOT/protos" \
  --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" \
  "$ROOT/protos/ensemble-service.proto"
sed -i 's/^import ensemble_service_pb2 as /from . import ensemble_service_pb2 as /' \
  "$OUT/ensemble_service_pb2_grpc.py"
[ -f "$OUT/__init__.py" ] || echo '"""Generated gRPC stubs for protos/ensemble-service.proto (hack/gen_protos.sh)."""' > "$OUT/__init__.py"

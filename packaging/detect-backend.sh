#!/bin/sh
# Prints which llama.cpp backend to build on this machine: metal, cuda or cpu.
# HEARTH_BACKEND overrides. CUDA needs both the toolkit (nvcc) and a GPU with a
# working driver: a CUDA build on a machine without one cannot load.
if [ -n "${HEARTH_BACKEND:-}" ]; then echo "$HEARTH_BACKEND"; exit 0; fi
case "$(uname -s)-$(uname -m)" in
  Darwin-arm64) echo metal; exit 0 ;;
esac
if command -v nvcc >/dev/null 2>&1 && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo cuda; exit 0
fi
echo cpu

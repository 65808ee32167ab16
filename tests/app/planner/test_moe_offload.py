"""Expert offload (``--n-cpu-moe``) through ctypes reaches llama.cpp on this CPU build.

The load runs in a child process, as in the engine worker: llama_cpp is
imported there, never in the test process.
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.engine.moe_offload import (
    FFN_EXPS_REGEX,
    OverrideArray,
    TensorBuftOverride,
    expert_layer_patterns,
    overridden_tensors,
)

ROOT = Path(__file__).resolve().parents[3]

_CHILD = r"""
import ctypes, json, sys
sys.path.insert(0, sys.argv[1])
import llama_cpp
from app.engine.moe_offload import cpu_moe_overrides, overridden_tensors

lines = []

@llama_cpp.llama_log_callback
def cb(level, text, user):
    lines.append(text.decode("utf-8", "replace"))

llama_cpp.llama_log_set(cb, ctypes.c_void_p(0))
n = int(sys.argv[3])
original = llama_cpp.llama_cpp.llama_model_load_from_file
kw = dict(model_path=sys.argv[2], n_ctx=256, verbose=False, use_mmap=False, flash_attn=True)
if n:
    with cpu_moe_overrides(llama_cpp, n):
        llm = llama_cpp.Llama(**kw)
else:
    llm = llama_cpp.Llama(**kw)
out = []
for t in (llm.generate(llm.tokenize(b"hello", add_bos=False), temp=0.0)):
    out.append(t)
    if len(out) == 3:
        break
print("@@" + json.dumps({
    "overridden": [o.__dict__ for o in overridden_tensors("".join(lines))],
    "generated": len(out),
    "restored": llama_cpp.llama_cpp.llama_model_load_from_file is original,
    "params_cleared": not llm.model_params.tensor_buft_overrides,
}))
"""


def _load(path: Path, n_cpu_moe: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), str(path), str(n_cpu_moe)],
                          capture_output=True, text=True, timeout=120, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@")), None)
    assert line is not None, proc.stderr[-3000:]
    return json.loads(line[2:])


def test_expert_override_reaches_llama_cpp(gptoss_mxfp4_path: Path) -> None:
    result = _load(gptoss_mxfp4_path, 1)
    moved = {o["name"]: o for o in result["overridden"]}
    # llama.cpp's own load log: "tensor blk.0.ffn_up_exps.weight (0 MiB mxfp4) buffer type overridden to CPU"
    for kind in ("up", "gate", "down"):
        assert f"blk.0.ffn_{kind}_exps.weight" in moved
    assert moved["blk.0.ffn_up_exps.weight"]["ggml_type"] == "mxfp4"
    assert all(o["buffer_type"].startswith("CPU") for o in result["overridden"])
    assert not any(name.startswith("blk.1.") for name in moved)  # only the first N layers
    assert not any("attn" in name or "gate_inp" in name for name in moved)  # experts only
    assert result["generated"] == 3  # the model still runs
    assert result["restored"] and result["params_cleared"]


def test_no_override_without_the_context_manager(gptoss_mxfp4_path: Path) -> None:
    result = _load(gptoss_mxfp4_path, 0)
    assert result["overridden"] == [] and result["generated"] == 3


def test_patterns_are_llama_cpp_n_cpu_moe_patterns() -> None:
    pats = expert_layer_patterns(3)
    assert pats == [rf"blk\.{i}\.ffn_(up|down|gate|gate_up)_(ch|)exps" for i in range(3)]
    assert pats[0].endswith(FFN_EXPS_REGEX)
    assert expert_layer_patterns([5, 2, 2]) == [rf"blk\.{i}{FFN_EXPS_REGEX}" for i in (2, 5)]
    assert expert_layer_patterns(0) == []


def test_override_array_is_null_terminated_and_keeps_strings_alive() -> None:
    arr = OverrideArray(expert_layer_patterns(2), buft=0x1234)
    view = (TensorBuftOverride * 3).from_address(arr.address)
    assert view[0].pattern == expert_layer_patterns(2)[0].encode()
    assert view[1].buft == 0x1234
    assert view[2].pattern is None and view[2].buft is None
    assert ctypes.sizeof(TensorBuftOverride) == 2 * ctypes.sizeof(ctypes.c_void_p)
    with pytest.raises(ValueError, match="at most"):
        OverrideArray(["x"] * 5000, buft=1)


def test_log_parser_reads_llama_cpp_lines() -> None:
    log = ("llama_model_loader: - type mxfp4: 72 tensors\n"
           "tensor blk.3.ffn_down_exps.weight (135 MiB mxfp4) buffer type overridden to CUDA_Host\n")
    [t] = overridden_tensors(log)
    assert (t.name, t.mib, t.ggml_type, t.buffer_type) == ("blk.3.ffn_down_exps.weight", 135, "mxfp4", "CUDA_Host")

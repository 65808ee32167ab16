"""Split-file and expert-tensor names: one definition, used everywhere."""

from __future__ import annotations

from pathlib import Path

from app.gguf_names import EXPERT_TENSOR_RE, SPLIT_RE, split_part_names

ROOT = Path(__file__).resolve().parents[2]


def test_split_names_round_trip() -> None:
    names = split_part_names("gpt-oss-120b-mxfp4", 3)
    assert names == [f"gpt-oss-120b-mxfp4-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    m = SPLIT_RE.match(names[1])
    assert m and (m.group("prefix"), m.group("no"), m.group("count")) == ("gpt-oss-120b-mxfp4", "00002", "00003")
    assert SPLIT_RE.match("model-1-of-3.gguf") is None


def test_expert_tensors_are_recognised() -> None:
    for name in ("blk.0.ffn_up_exps.weight", "blk.7.ffn_gate_up_exps.weight", "blk.3.ffn_down_chexps.weight"):
        assert EXPERT_TENSOR_RE.search(name), name
    assert not EXPERT_TENSOR_RE.search("blk.0.ffn_up.weight")
    assert not EXPERT_TENSOR_RE.search("blk.0.ffn_up_shexp.weight")


def test_each_pattern_is_written_once() -> None:
    split_src = r"-(?P<no>\d{5})-of-"
    expert_src = "_(ch|)exps"
    where = {split_src: [], expert_src: []}
    for path in sorted((ROOT / "app").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern in where:
            if pattern in text:
                where[pattern].append(str(path.relative_to(ROOT)))
    assert where == {split_src: ["app/gguf_names.py"], expert_src: ["app/gguf_names.py"]}

"""Drawing a graph as a standalone SVG: well-formed XML, one box per drawn node,
category colours, nested regions, collapsed repeats, determinism, escaping,
non-overlapping layout and the size guard."""
import pathlib
import sys
import time
import xml.etree.ElementTree as ET

import pytest
import torch

from spikec import ir
from spikec.ir import Loc, TensorType
from spikec.ir.draw_svg import to_svg, write_svg
from spikec.ir.registry import _REGISTRY, OpDef, Param

TESTS = pathlib.Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import modules  # noqa: E402
from graphs import small_graph  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"
F32 = TensorType((2, 16), "f32")


# -- helpers --------------------------------------------------------------------
def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def groups(root, first_class):
    return [g for g in root.iter(SVG + "g") if g.get("class", "").split()[:1] == [first_class]]


def node_boxes(root):
    return groups(root, "node")


def all_text(root) -> str:
    return "\n".join("".join(t.itertext()) for t in root.iter(SVG + "text"))


def rect_of(g):
    r = g.find(SVG + "rect")
    return tuple(float(r.get(k)) for k in ("x", "y", "width", "height"))


def check_geometry(svg: str):
    """Every box lies inside the viewBox; two boxes either do not meet or one
    holds the other (a region or a repeat frame around its contents)."""
    root = parse(svg)
    x0, y0, w, h = (float(v) for v in root.get("viewBox").split())
    boxes = [rect_of(g) for g in root.iter(SVG + "g")
             if g.get("class", "").split()[:1] in (["node"], ["io"], ["const"], ["repeat"])]
    assert boxes
    for (x, y, bw, bh) in boxes:
        assert x >= x0 and y >= y0 and x + bw <= x0 + w + 0.05 and y + bh <= y0 + h + 0.05

    def inside(a, b):
        return a[0] >= b[0] and a[1] >= b[1] and a[0] + a[2] <= b[0] + b[2] and a[1] + a[3] <= b[1] + b[3]

    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
            iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
            if ix > 0 and iy > 0:
                assert inside(a, b) or inside(b, a), f"boxes overlap: {a} {b}"
    return root


@pytest.fixture(scope="module")
def imported():
    cache = {}

    def get(name):
        if name not in cache:
            from spikec.frontend import from_torch
            cache[name] = from_torch(modules.make(name), modules.example_input())
        return cache[name]
    return get


# -- tests ------------------------------------------------------------------------
def test_small_graph_one_box_per_node(tmp_path):
    g = small_graph()
    svg = to_svg(g)
    root = check_geometry(svg)
    ops = [n.op for n in g.nodes if n.op != "constant"]
    boxes = node_boxes(root)
    assert len(boxes) == len(ops)
    assert sorted(b.get("data-op") for b in boxes) == sorted(ops)
    text = all_text(root)
    for op in ops:
        assert op in text
    assert "model.py:12" in text                  # source location
    assert "f32[2, T, 16]" in text                # output type
    assert "proj.weight" in text                  # the weight, listed in its consumer's box
    assert len(groups(root, "io")) == len(g.inputs) + len(g.outputs)
    assert len(root.findall(f".//{SVG}path[@class='edge']")) >= 6
    assert root.find(f"{SVG}defs/{SVG}marker") is not None
    assert groups(root, "legend")
    out = write_svg(g, tmp_path / "g.svg")
    assert pathlib.Path(out).read_text(encoding="utf-8") == svg


def test_single_node_and_passthrough_graphs():
    g = ir.Graph("one")
    x = g.add_input(F32, "x")
    g.set_outputs([g.add_node("relu", {"self": x}, [F32]).output])
    root = check_geometry(to_svg(g))
    assert [b.get("data-op") for b in node_boxes(root)] == ["relu"]

    h = ir.Graph("empty")
    h.set_outputs([h.add_input(F32, "x")])
    root = check_geometry(to_svg(h))
    assert node_boxes(root) == []


def test_constant_modes():
    g = small_graph()
    nodes_mode = parse(to_svg(g, constants="nodes"))
    assert len(groups(nodes_mode, "const")) == 1 and "proj.weight" in all_text(nodes_mode)
    hidden = parse(to_svg(g, constants="hide"))
    assert groups(hidden, "const") == [] and "proj.weight" not in all_text(hidden)
    with pytest.raises(ValueError):
        to_svg(g, constants="everywhere")


@pytest.mark.no_roundtrip   # the fused test op exists only inside this test
def test_fused_op_is_highlighted(monkeypatch):
    monkeypatch.setitem(_REGISTRY, "draw_test_fused", OpDef(
        "draw_test_fused", [Param("x", "tensor")], lambda x: x, 1, category="fused"))
    g = ir.Graph("fused")
    x = g.add_input(F32, "x")
    y = g.add_node("draw_test_fused", {"x": x}, [F32], loc=Loc("model.py", 3)).output
    g.set_outputs([g.add_node("relu", {"self": y}, [F32]).output])
    root = parse(to_svg(g))
    fused = [b for b in node_boxes(root) if "cat-fused" in b.get("class")]
    core = [b for b in node_boxes(root) if "cat-core" in b.get("class")]
    assert [b.get("data-op") for b in fused] == ["draw_test_fused"]
    assert [b.get("data-op") for b in core] == ["relu"]
    assert fused[0].find(SVG + "rect").get("fill") != core[0].find(SVG + "rect").get("fill")


def test_custom_op_is_highlighted(imported):
    root = check_geometry(to_svg(imported("spiking")))
    custom = [b for b in node_boxes(root) if "cat-custom" in b.get("class")]
    assert [b.get("data-op") for b in custom] == ["spikec_test::spike"]
    fills = {b.find(SVG + "rect").get("fill") for b in node_boxes(root)}
    assert len(fills) == 2


def test_structured_op_draws_its_region(imported):
    g = imported("gla_scan")
    root = check_geometry(to_svg(g))
    scan = [b for b in node_boxes(root) if b.get("data-op") == "scan"]
    assert len(scan) == 1 and "cat-structured" in scan[0].get("class")
    region = scan[0].find(f"{SVG}g[@class='region']")
    assert region is not None and region.get("data-region") == "combine"
    assert "combine: 10 ops" in all_text(region)
    # the region's nodes are drawn inside the scan box
    sx, sy, sw, sh = rect_of(scan[0])
    region_ops = [n.op for n in g.walk() if n.graph is not g]
    inner = [b for b in node_boxes(root) if b is not scan[0]
             and sx <= rect_of(b)[0] and rect_of(b)[0] + rect_of(b)[2] <= sx + sw
             and sy <= rect_of(b)[1] and rect_of(b)[1] + rect_of(b)[3] <= sy + sh]
    assert sorted(b.get("data-op") for b in inner) == sorted(region_ops)
    assert len(node_boxes(root)) == sum(1 for n in g.walk() if n.op != "constant")


def test_collapse_repeats_shrinks_the_unrolled_loop(imported):
    g = imported("gla_loop")
    assert len(g.nodes) == 136
    full = to_svg(g, collapse_repeats=False)
    small = to_svg(g)
    rf, rs = check_geometry(full), check_geometry(small)
    assert len(node_boxes(rf)) == 128
    assert len(node_boxes(rs)) <= 40
    assert len(small) * 2 < len(full)

    def area(root):
        _, _, w, h = (float(v) for v in root.get("viewBox").split())
        return w * h
    assert area(rs) * 2 < area(rf)
    reps = groups(rs, "repeat")
    assert len(reps) == 1 and reps[0].get("data-repeat") == "8" and reps[0].get("data-period") == "14"
    assert "×8" in all_text(rs)
    assert rs.findall(f".//{SVG}path[@class='carried']")      # the state S, step to step
    assert groups(rf, "repeat") == [] and "×" not in all_text(groups(rf, "nodes")[0])


def test_nested_repeats_and_titles():
    # three "layers", each an unrolled loop of 4 steps of the same 3 ops
    g = ir.Graph("_stack")
    h = g.add_input(F32, "x")
    for layer in range(3):
        s = g.add_node("relu", {"self": h}, [F32], loc=Loc("m.py", 1)).output
        for t in range(4):
            a = g.add_node("mul", {"self": s, "other": h}, [F32], loc=Loc("m.py", 2)).output
            b = g.add_node("exp", {"self": a}, [F32], loc=Loc("m.py", 3)).output
            s = g.add_node("add", {"self": b, "other": s}, [F32], loc=Loc("m.py", 4)).output
        h = g.add_node("tanh", {"self": s}, [F32], loc=Loc("m.py", 5)).output
    g.set_outputs([h])
    root = check_geometry(to_svg(g, title="stack"))
    reps = sorted((r.get("data-repeat"), r.get("data-period")) for r in groups(root, "repeat"))
    assert reps == [("3", "14"), ("4", "3")]
    assert len(node_boxes(root)) == 1 + 3 + 1
    assert root.find(SVG + "title").text == "stack"


def test_deterministic(imported):
    from spikec.frontend import from_torch
    again = from_torch(modules.make("gla_loop"), modules.example_input())
    g = imported("gla_loop")
    assert to_svg(g) == to_svg(g) == to_svg(again)
    assert to_svg(g, collapse_repeats=False) == to_svg(again, collapse_repeats=False)


@pytest.mark.no_roundtrip
def test_xml_escaping():
    g = ir.Graph("_a<b&c")
    x = g.add_input(F32, "x")
    w = g.add_constant('w<&>"\'', torch.zeros(2, 16))
    y = g.add_node("add", {"self": x, "other": w}, [F32], loc=Loc("dir/x<y>&z.py", 7)).output
    g.set_outputs([y])
    for mode in ("inline", "nodes"):
        svg = to_svg(g, title='T <&> "q"', constants=mode)
        root = parse(svg)
        text = all_text(root)
        assert 'w<&>"\'' in text and "x<y>&z.py:7" in text
        assert root.find(SVG + "title").text == 'T <&> "q"'
    assert "graph @_a<b&c" in all_text(parse(to_svg(g)))


def test_max_nodes_guard():
    # 300 steps of the same 10 ops: 3000 nodes
    g = ir.Graph("_big")
    x = g.add_input(F32, "x")
    s = x
    for t in range(300):
        a = g.add_node("select", {"self": g.inputs[0], "dim": 0, "index": t % 2},
                       [TensorType((16,), "f32")], loc=Loc("loop.py", 10)).output
        b = g.add_node("exp", {"self": a}, [TensorType((16,), "f32")], loc=Loc("loop.py", 11)).output
        c = g.add_node("mul", {"self": s, "other": b}, [F32], loc=Loc("loop.py", 11)).output
        d = g.add_node("relu", {"self": c}, [F32], loc=Loc("loop.py", 12)).output
        e = g.add_node("add", {"self": d, "other": s}, [F32], loc=Loc("loop.py", 12)).output
        f = g.add_node("tanh", {"self": e}, [F32], loc=Loc("loop.py", 13)).output
        h = g.add_node("mul", {"self": f, "other": 0.5}, [F32], loc=Loc("loop.py", 13)).output
        i = g.add_node("sigmoid", {"self": h}, [F32], loc=Loc("loop.py", 14)).output
        j = g.add_node("mul", {"self": i, "other": e}, [F32], loc=Loc("loop.py", 14)).output
        s = g.add_node("add", {"self": j, "other": s}, [F32], loc=Loc("loop.py", 15)).output
    g.set_outputs([s])
    assert len(g.nodes) == 3000

    t0 = time.perf_counter()
    collapsed = check_geometry(to_svg(g))
    assert len(node_boxes(collapsed)) == 10 and groups(collapsed, "repeat")[0].get("data-repeat") == "300"

    guarded = parse(to_svg(g, collapse_repeats=False))          # 3000 > max_nodes=2000
    assert len(node_boxes(guarded)) == 10 and "over max_nodes=2000" in all_text(guarded)

    merged = parse(to_svg(g, max_nodes=8))
    assert len(node_boxes(merged)) <= 8 and "merged by source line" in all_text(merged)
    truncated = parse(to_svg(g, collapse_repeats=False, max_nodes=3, min_repeat_nodes=10**9))
    assert len(node_boxes(truncated)) == 3 and "truncated" in all_text(truncated)

    everything = to_svg(g, collapse_repeats=False, max_nodes=5000)
    assert len(node_boxes(parse(everything))) == 3000
    assert time.perf_counter() - t0 < 15

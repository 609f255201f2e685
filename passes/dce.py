"""dce: remove nodes whose results are never used (the IR is side-effect free)."""
from spikec.ir import Graph

from .manager import stat
from .registry import register
from .rewrite import dead_code_elimination


@register("dce")
def dce(graph: Graph) -> None:
    """Remove nodes whose results are unused, inside regions too."""
    for node in graph.walk():
        for r in node.regions:
            stat("removed", dead_code_elimination(r))
    stat("removed", dead_code_elimination(graph))

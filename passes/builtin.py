"""Import every built-in pass so that it registers itself; define `default`."""
from . import canonicalize, cse, dce, fold_constants, propagate_shapes  # noqa: F401
from .registry import register_pipeline

register_pipeline("default", "canonicalize,cse,fold-constants,dce,propagate-shapes",
                  "the standard clean-up: canonicalize, cse, constant folding, dce, shape propagation")
from . import fuse_attention, la_quadratic  # noqa: F401,E402  (attention fusion, quadratic linear attention)
from . import reroll_loops  # noqa: F401,E402
from . import fuse_linear_attention  # noqa: F401,E402
from . import fuse_lif  # noqa: F401,E402  (multi-step LIF neurons -> lif)
from . import convert_attention  # noqa: F401,E402  (SpikingBrain conversion: attention -> GLA / SWA)
from . import insert_spike_coding, spike_decompose  # noqa: F401,E402  (spike coding and its lowering to core ops)
from . import fuse_moe, partition_moe  # noqa: F401,E402  (MoE: recognition and expert parallelism)

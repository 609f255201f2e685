"""Every zoo model (tiny preset) traces through the torch frontend, verifies,
round-trips as text and interprets to the eager logits (fp32, max abs error <= 1e-5)."""
import pytest
import torch

from spikec import ir, models
from spikec.frontend import from_torch

TOL = 1e-5


@pytest.mark.parametrize("name", models.names())
def test_zoo_model_imports_and_interprets(name):
    torch.manual_seed(0)
    model = models.create(name, "tiny").eval()
    vocab = models.config(name, "tiny").vocab_size
    ids = torch.randint(0, vocab, (1, 12), generator=torch.Generator().manual_seed(1))
    try:
        g = from_torch(model, (ids,), dynamic={"T": (2, 4096)})
        lengths = (12, 29)
    except ir.FrontendError:
        g = from_torch(model, (ids,))       # a model whose recurrence is a loop fixes T
        lengths = (12,)
    ir.verify(g)
    assert ir.structural_diff(g, ir.parse(str(g), constants=g.constants)) is None
    for T in lengths:
        x = torch.randint(0, vocab, (1, T), generator=torch.Generator().manual_seed(T))
        with torch.no_grad():
            want = model(x)
        want = want[0] if isinstance(want, tuple) else want
        got = ir.interpret(g, x)
        got = got[0] if isinstance(got, tuple) else got
        assert (got - want).abs().max().item() <= TOL, (name, T)

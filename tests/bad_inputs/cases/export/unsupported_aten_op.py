"""An FFT: torch.export keeps it as aten._fft_r2c, which spikec has no op for."""
import torch


class Spectrum(torch.nn.Module):
    def forward(self, x):
        return torch.fft.rfft(x).abs()


def make():
    return Spectrum(), (torch.randn(2, 8),)

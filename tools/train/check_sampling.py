"""Self-check of sampling.py against independent formulas (run: /usr/bin/python3 tools/train/check_sampling.py).

1. The Euler step in sigma space on the trailing grid equals diffusers' DDIMScheduler step (eta 0, v-prediction,
   set_alpha_to_one=True, timestep_spacing "trailing"), written here in alpha space, wherever the grid's
   timesteps are integers (N = 1, 2, 4, 5, 8, 10, 20, 25, 40, 50). The start differs from diffusers' (z = noise):
   k-diffusion's x = noise * sigma_0 is z = noise * sqrt(1 - alphas_cumprod[999]) in alpha space.
2. sigma_to_t inverts t_to_sigma on fractional t; sigma(t) at integer t is sqrt((1 - a_t) / a_t).
3. Grids nest: trailing_sigmas(N) == trailing_sigmas(2N)[::2].
4. sigma_0 of the trailing grid (t = 999) is 14.6146 (the value every SD sampler starts from).
Exits non-zero on any failure.
"""
import sys

import torch

import sampling


def ddim_alpha_space(model, noise, steps):
    ac = sampling.alphas_cumprod()
    ts = sampling.trailing_timesteps(steps)
    z = noise.double() * (1 - ac[999]).sqrt()  # k-diffusion's start x = noise * sigma_0, in alpha space
    for k, t in enumerate(ts):
        t = int(t)
        a_t = ac[t]
        a_prev = ac[int(ts[k + 1])] if k + 1 < steps else torch.tensor(1.0, dtype=torch.float64)
        v = model(z, torch.full((z.shape[0],), float(t))).double()
        x0 = a_t.sqrt() * z - (1 - a_t).sqrt() * v
        eps = a_t.sqrt() * v + (1 - a_t).sqrt() * z
        z = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return z


def main():
    failures = []
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 4, generator=g, dtype=torch.float64) * 0.3

    def model(x, t):  # a fixed, t-dependent, nonlinear stand-in for the UNet
        h = torch.einsum("bchw,dc->bdhw", x.double(), weight)
        return torch.tanh(h) * (1 + t.double()[:, None, None, None] / 1000)

    noise = torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64)
    for steps in (1, 2, 4, 5, 8, 10, 20, 25, 40, 50):
        a = sampling.sample(model, noise, steps)
        b = ddim_alpha_space(model, noise, steps)
        err = (a - b).abs().max().item()
        if err > 1e-9:
            failures.append(f"steps {steps}: Euler-in-sigma differs from DDIM-in-alpha by {err:.3g}")
    t = torch.linspace(0, 999, 3001, dtype=torch.float64)
    err = (sampling.sigma_to_t(sampling.t_to_sigma(t)) - t).abs().max().item()
    if err > 1e-7:
        failures.append(f"sigma_to_t(t_to_sigma(t)) differs from t by {err:.3g}")
    ac = sampling.alphas_cumprod()
    err = (sampling.t_to_sigma(torch.arange(1000.0)) - ((1 - ac) / ac).sqrt()).abs().max().item()
    if err > 1e-9:
        failures.append(f"sigma at integer t is off by {err:.3g}")
    for n in (1, 2, 4, 8, 16, 32):
        if not torch.allclose(sampling.trailing_sigmas(n), sampling.trailing_sigmas(2 * n)[::2], rtol=0, atol=1e-12):
            failures.append(f"trailing grid {n} is not every second point of grid {2 * n}")
    s0 = sampling.trailing_sigmas(8)[0].item()
    if abs(s0 - 14.6146) > 1e-3:
        failures.append(f"sigma_0 = {s0}, expected 14.6146")
    for f in failures:
        print("FAIL:", f)
    print("sampling checks: " + ("all passed" if not failures else f"{len(failures)} failed"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

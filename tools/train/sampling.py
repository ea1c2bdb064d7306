"""The noise schedule, the sampler grid and the deterministic sampler, written once and used for teacher training,
distillation targets and evaluation. They are exactly what the engine runs:

- betas: SD's scaled_linear, beta_t = (linspace(sqrt(0.00085), sqrt(0.012), 1000)_t)^2; alphas_cumprod = cumprod(1-beta);
  sigma(t) = sqrt((1 - alphas_cumprod_t) / alphas_cumprod_t) at integer t.
- fractional t: k-diffusion's DiscreteSchedule, log sigma interpolated linearly between the integer neighbours;
  sigma_to_t is its inverse (the same piecewise-linear map in log sigma).
- grid "ddim_trailing" with N steps: t_k = 999 - k * 1000 / N (k = 0..N-1), sigma_k = sigma(t_k), then a final 0.
  Grids nest: the N-step grid is every second point of the 2N-step grid (what progressive distillation needs).
- denoiser: k-diffusion's v-prediction wrapper, D(x, s) = c_skip x + c_out F(c_in x, sigma_to_t(s)) with
  c_in = 1/sqrt(s^2+1), c_skip = 1/(s^2+1), c_out = -s/sqrt(s^2+1); F is the UNet (v-prediction).
- step: DDIM with eta 0 == Euler in sigma space, x' = x + (x - D) / s * (s' - s); the start is x = noise * sigma_0.

Schedules are computed in float64 and returned as float64 tensors; callers cast.
"""
import torch

NUM_TRAIN_TIMESTEPS = 1000
BETA_START = 0.00085
BETA_END = 0.012


def alphas_cumprod():
    betas = torch.linspace(BETA_START ** 0.5, BETA_END ** 0.5, NUM_TRAIN_TIMESTEPS, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)                        # [1000]


def log_sigmas():
    ac = alphas_cumprod()
    return (((1 - ac) / ac) ** 0.5).log()                           # [1000]


_LOG_SIGMAS = log_sigmas()


def t_to_sigma(t):
    """t: tensor of (possibly fractional) timesteps in [0, 999] -> sigma (float64, same shape)."""
    t = torch.as_tensor(t, dtype=torch.float64).clamp(0, NUM_TRAIN_TIMESTEPS - 1)
    ls = _LOG_SIGMAS.to(t.device)
    low = t.floor().long()
    high = t.ceil().long()
    w = t - low
    return ((1 - w) * ls[low] + w * ls[high]).exp()


def sigma_to_t(sigma):
    """Inverse of t_to_sigma (k-diffusion DiscreteSchedule.sigma_to_t): sigma > 0 -> fractional t (float64).
    Sigmas outside [sigma(0), sigma(999)] map to 0 or 999."""
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    ls = _LOG_SIGMAS.to(sigma.device)
    log_sigma = sigma.log()
    dists = log_sigma.reshape(1, -1) - ls[:, None]                  # [1000, n]
    low_idx = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=ls.shape[0] - 2)
    high_idx = low_idx + 1
    low, high = ls[low_idx], ls[high_idx]
    w = ((low - log_sigma.reshape(-1)) / (low - high)).clamp(0, 1)
    t = (1 - w) * low_idx + w * high_idx
    return t.reshape(sigma.shape)


def trailing_timesteps(steps):
    """[steps] float64: 999 - k * 1000 / steps."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    k = torch.arange(steps, dtype=torch.float64)
    return (NUM_TRAIN_TIMESTEPS - 1) - k * NUM_TRAIN_TIMESTEPS / steps


def trailing_sigmas(steps):
    """[steps + 1] float64: sigma(t_k) for the trailing grid, then 0."""
    return torch.cat([t_to_sigma(trailing_timesteps(steps)), torch.zeros(1, dtype=torch.float64)])


def scalings(sigma):
    """(c_skip, c_out, c_in) of the v-prediction wrapper for sigma (any shape)."""
    s2 = sigma ** 2 + 1
    return 1 / s2, -sigma / s2 ** 0.5, 1 / s2 ** 0.5


def v_target(x0, noise, sigma):
    """The v-prediction target for x = x0 + sigma * noise: (noise - sigma * x0) / sqrt(sigma^2 + 1).
    sigma broadcasts against x0 ([B, 1, 1, 1])."""
    return (noise - sigma * x0) / (sigma ** 2 + 1) ** 0.5


def denoise(model, x, sigma):
    """D(x, sigma) = c_skip x + c_out model(c_in x, sigma_to_t(sigma)).
    x [B, C, H, W]; sigma: float64 scalar or [B]; model(x_in, t [B] float32) -> v [B, C, H, W]."""
    sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).expand(x.shape[0])
    c_skip, c_out, c_in = (c.to(x.dtype)[:, None, None, None] for c in scalings(sigma))
    t = sigma_to_t(sigma).to(torch.float32)
    v = model(x * c_in, t).to(x.dtype)
    return c_skip * x + c_out * v


def euler_step(x, denoised, sigma, sigma_next):
    """DDIM (eta 0) step from sigma to sigma_next; sigma, sigma_next: float scalars or [B] tensors."""
    sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device)
    sigma_next = torch.as_tensor(sigma_next, dtype=torch.float64, device=x.device)
    ratio = ((sigma_next - sigma) / sigma).to(x.dtype)
    if ratio.ndim == 1:
        ratio = ratio[:, None, None, None]
    return x + (x - denoised) * ratio


@torch.no_grad()
def sample(model, noise, steps):
    """Deterministic DDIM sampling on the trailing grid: x = noise * sigma_0, then `steps` Euler steps.
    model(x_in, t) -> v (CFG, if any, lives inside model). Returns the final x (= the latent at sigma 0)."""
    sigmas = trailing_sigmas(steps)
    x = noise * sigmas[0].item()
    for k in range(steps):
        denoised = denoise(model, x, sigmas[k])
        x = euler_step(x, denoised, sigmas[k], sigmas[k + 1])
    return x


def cfg_model(unet_fn, cond, uncond, scale):
    """Classifier-free guidance as a model for `denoise`: v = v_u + scale (v_c - v_u), both branches in one
    batch. unet_fn(x_in [2B, ...], t [2B], context [2B, 77, D]) -> v; scale: a number or [B]. Guidance on v
    equals guidance on D (the wrapper is affine in v with the same coefficients for both branches)."""
    context = torch.cat([uncond, cond])
    scale = torch.as_tensor(scale, dtype=torch.float32, device=cond.device)
    if scale.ndim == 1:
        scale = scale[:, None, None, None]

    def model(x_in, t):
        v = unet_fn(torch.cat([x_in, x_in]), torch.cat([t, t]), context)
        v_u, v_c = v.float().chunk(2)
        return v_u + scale * (v_c - v_u)
    return model

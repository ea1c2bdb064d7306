"""The training stages of the project's own model, each time-budgeted and resumable:

  classifier  the evaluation classifier (tools/eval), when it is not committed yet
  vae         AutoencoderKL, L1 + image-gradient L1 + low-frequency MSE + 1e-6 KL; scaling_factor = 1/std; PSNR
  teacher     text encoder + softmax-attention UNet from scratch, v-prediction, continuous t, EMA
  relu        the teacher fine-tuned to ReLU attention (UNet only, text encoder frozen)
  distill     guidance-aware progressive distillation: each round halves the steps, the student (with the
              guidance-scale embedding) matching two DDIM steps of its CFG-guided teacher in one step
  eval        every UNet not measured yet, scored with the classifier (evaluate.py renders the table)

All share one Context: the data on the device, the artefact store, the output/work folders and the logs.
"""
import copy
import os
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F

import captions
import sampling
from common import Budget, Ema, autocast, count_parameters, log, maybe_compile, scheduled_lr
from models import init_text_encoder, student_from_teacher, text_config, unet_config, vae_config, with_activation
from store import Artefact, build_module, load_work_state, save_work_state

DEMO_PROMPTS = (("red apple", "blue"), ("grinning face", "yellow"), ("red heart", "white"), ("dog face", "green"),
                ("pizza", "purple"), ("rocket", "black"), ("sun", "cyan"), ("cat face", "pink"),
                ("fire", "gray"), ("ghost", "orange"), ("snowman", "red"), ("four leaf clover", "brown"))
DEFAULT_CFG = 3.0
GUIDANCE_RANGE = (1.0, 8.0)


class Context:
    def __init__(self, data, device, store, out, work, jsonlog, tiny=False, seed=0, compile=False,
                 batch=512, vae_batch=128, checkpoint_s=120.0, resume_from=None):
        self.data, self.device, self.store = data, device, store
        self.resume_from = resume_from
        self.classifier = None  # an explicit classifier file for eval (else: --out, --resume-from, tools/eval)
        self.out, self.work, self.jsonlog = out, work, jsonlog
        self.tiny, self.seed, self.compile = tiny, seed, compile
        self.batch, self.vae_batch, self.checkpoint_s = batch, vae_batch, checkpoint_s
        self.last_save = time.time()
        self.publish = None  # set by a training loop: copies its EMA weights into the store before a save
        self._latents = None

    def rng(self, stage, step):
        """A numpy RNG for `stage` that differs per resumed start step (so resumed runs see new batches)."""
        return np.random.RandomState((self.seed * 1_000_003 + zlib.crc32(stage.encode()) + step * 7919) % 2 ** 32)

    def save(self):
        if self.publish is not None:
            self.publish()
        paths, kept = self.store.save(self.out)
        self.last_save = time.time()
        log(f"saved {len(paths)} weight shard(s) to {self.out}: {', '.join(sorted(kept))}")

    def maybe_save(self, save_work):
        if time.time() - self.last_save >= self.checkpoint_s:
            save_work()
            self.save()

    def latents(self):
        if self._latents is None:
            self._latents = LatentCache(self, self.store["vae"].module)
        return self._latents


def is_oom(error):
    return isinstance(error, RuntimeError) and "out of memory" in str(error)


def run_steps(ctx, name, budget, step_fn, batch, progress, log_every_s=20.0):
    """Calls step_fn(local_step, batch, fraction_of_budget_used) -> loss until the budget is spent; local_step
    counts from 0 in every invocation (a resumed stage warms its fresh optimizer up again). Halves the batch on
    CUDA out-of-memory. Logs progress and JSON lines; returns the final batch size."""
    step = progress.get("steps", 0)
    progress["seed"] = ctx.seed  # batches come from ctx.rng(stage, start step): seed + step reproduce them
    start_step, last_log, losses = step, time.time(), []
    while not budget.over():
        try:
            loss = step_fn(step - start_step, batch, min(1.0, budget.elapsed() / budget.seconds))
        except RuntimeError as error:
            if not is_oom(error) or batch <= 8:
                raise
            batch //= 2
            torch.cuda.empty_cache()
            log(f"{name}: out of memory, batch halved to {batch}")
            continue
        losses.append(loss)
        step += 1
        progress["steps"] = step
        if time.time() - last_log >= log_every_s or budget.over():
            mean = float(np.mean([l.item() if torch.is_tensor(l) else l for l in losses]))
            rate = (step - start_step) / max(budget.elapsed(), 1e-6)
            log(f"{name}: step {step} loss {mean:.5f} ({rate:.2f} it/s, batch {batch}, {budget.left():.0f}s left)")
            ctx.jsonlog.write(stage=name, step=step, loss=round(mean, 6), it_s=round(rate, 3), batch=batch)
            losses, last_log = [], time.time()
    progress["seconds"] = round(progress.get("seconds", 0.0) + budget.elapsed(), 1)
    return batch


def _set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr


# ---------------------------------------------------------------------------------------------------- classifier

def stage_classifier(ctx, seconds):
    from classifier import save_classifier
    from train_classifier import accuracy, train
    model, steps = train(ctx.data, ctx.device, steps=300 if ctx.tiny else 4000, batch=64 if ctx.tiny else 512,
                         seconds=seconds, seed=7, lr=3e-3, jsonlog=ctx.jsonlog)
    n = ctx.data.n
    emoji, colour = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(len(captions.COLOURS)), indexing="ij"))
    acc = accuracy(model, ctx.data, ctx.device, emoji, colour, np.zeros_like(emoji))
    comp = np.random.RandomState(1).randint(1, len(captions.COMPOSITIONS), len(emoji))
    acc_comp = accuracy(model, ctx.data, ctx.device, emoji, colour, comp)
    path = os.path.join(ctx.out, "emoji_classifier.safetensors")
    save_classifier(model.cpu(), path, {"steps": steps, "seed": 7, "acc_emoji": f"{acc[0]:.4f}",
                                        "acc_colour": f"{acc[1]:.4f}", "acc_emoji_composed": f"{acc_comp[0]:.4f}",
                                        "acc_colour_composed": f"{acc_comp[1]:.4f}"})
    ctx.jsonlog.write(stage="classifier", steps=steps, acc_emoji=acc[0], acc_colour=acc[1],
                      acc_emoji_composed=acc_comp[0], acc_colour_composed=acc_comp[1])
    log(f"classifier: {steps} steps, emoji/colour accuracy {acc[0]:.4f}/{acc[1]:.4f} "
        f"(composed {acc_comp[0]:.4f}/{acc_comp[1]:.4f}) -> {path}")


# ---------------------------------------------------------------------------------------------------- VAE

def _gradient_l1(a, b):
    dx = lambda x: x[..., :, 1:] - x[..., :, :-1]  # noqa: E731
    dy = lambda x: x[..., 1:, :] - x[..., :-1, :]  # noqa: E731
    return (dx(a) - dx(b)).abs().mean() + (dy(a) - dy(b)).abs().mean()


def stage_vae(ctx, seconds, lr=1e-3, kl_weight=1e-6, lowfreq_weight=4.0):
    """L1 + L1 of image gradients + lowfreq_weight x MSE of 8x8-averaged images + kl_weight x KL. The low-frequency
    term is for the flat backgrounds: without it small VAEs confuse neighbouring colours for long (tiny VAE, 500
    steps x 32 on the CPU: worst colour 10.0 dB without it, 17.5 dB at weight 1, 21.4 dB at weight 4)."""
    budget = Budget(seconds)
    store, data, device = ctx.store, ctx.data, ctx.device
    if any(a.kind == "unet" for a in store.artefacts.values()):
        log("vae: UNets trained on this VAE's latents exist; not retraining it")
        return
    artefact = store["vae"] if "vae" in store else Artefact("vae", "vae", vae_config(ctx.tiny), None, {"steps": 0})
    vae = artefact.module or build_module("vae", artefact.config)
    vae.to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    work = load_work_state(ctx.work, "vae")
    if work is not None and work["progress"]["steps"] > artefact.progress.get("steps", 0):
        vae.load_state_dict(work["model"])
        opt.load_state_dict(work["optimizer"])
        artefact.progress = work["progress"]
        log(f"vae: resumed full-precision state at step {artefact.progress['steps']}")
    log(f"vae: {count_parameters(vae) / 1e6:.2f} M parameters, {seconds:.0f}s")
    rng = ctx.rng("vae", artefact.progress.get("steps", 0))
    artefact.module = vae
    store.put(artefact)

    def save_work():
        save_work_state(ctx.work, "vae", {"model": vae.state_dict(), "optimizer": opt.state_dict(),
                                          "progress": artefact.progress})

    def step_fn(step, batch, fraction):
        _set_lr(opt, scheduled_lr(step, fraction, lr, warmup=100))
        emoji, colour, comp = data.sample(batch, rng, composition_share=0.25)
        x = data.images(emoji, colour, comp)                                    # [B, 3, 64, 64]
        with autocast(device):
            mean, logvar = vae.encode(x)                                        # [B, 4, 16, 16] each
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            rec = vae.decode(z).float()                                         # [B, 3, 64, 64]
        mean, logvar = mean.float(), logvar.float()
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1.0 - logvar).mean()
        lowfreq = F.mse_loss(F.avg_pool2d(rec, 8), F.avg_pool2d(x, 8))
        loss = (rec - x).abs().mean() + _gradient_l1(rec, x) + lowfreq_weight * lowfreq + kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        ctx.maybe_save(save_work)
        return loss.detach()

    run_steps(ctx, "vae", budget, step_fn, ctx.vae_batch, artefact.progress)
    vae.eval()
    artefact.config.scaling_factor = latent_scaling(ctx, vae, 256 if ctx.tiny else 4096)
    psnr = vae_psnr(ctx, vae)
    artefact.progress.update(done=True, psnr=psnr, scaling_factor=artefact.config.scaling_factor)
    ctx.jsonlog.write(stage="vae", step=artefact.progress["steps"], scaling_factor=artefact.config.scaling_factor,
                      **{f"psnr_{k}": v for k, v in psnr.items()})
    log(f"vae: scaling_factor {artefact.config.scaling_factor:.5f}, PSNR " +
        ", ".join(f"{k} {v:.2f} dB" for k, v in psnr.items()))
    save_work()
    ctx.save()


@torch.no_grad()
def latent_scaling(ctx, vae, count=4096):
    """1 / std of latent samples of training images (SD's rule for scaling_factor)."""
    rng = ctx.rng("scaling", 0)
    samples = []
    for i in range(0, count, 512):
        emoji, colour, comp = ctx.data.sample(min(512, count - i), rng)
        mean, logvar = vae.encode(ctx.data.images(emoji, colour, comp))
        samples.append((mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)).float())
    return float(1.0 / torch.cat(samples).std().item())


@torch.no_grad()
def vae_psnr(ctx, vae):
    """Mean per-image PSNR (dB, images in [0, 1]) of reconstructions through the posterior mean on the held-out
    pairs and the held-out emoji (all colours), and on random training pairs."""
    data = ctx.data
    sets = {"heldout_pairs": (data.heldout_pairs[:, 0], data.heldout_pairs[:, 1])}
    if len(data.heldout_emoji):
        e, c = np.meshgrid(data.heldout_emoji, np.arange(len(captions.COLOURS)), indexing="ij")
        sets["heldout_emoji"] = (e.ravel(), c.ravel())
    pairs = data.train_pairs[ctx.rng("psnr", 0).randint(0, len(data.train_pairs), 240)]
    sets["train_pairs"] = (pairs[:, 0], pairs[:, 1])
    result = {}
    for name, (emoji, colour) in sets.items():
        emoji, colour = emoji[:24 if ctx.tiny else None], colour[:24 if ctx.tiny else None]
        if len(emoji) == 0:
            continue
        psnrs = []
        for i in range(0, len(emoji), 256):
            x = data.images(emoji[i:i + 256], colour[i:i + 256], np.zeros(len(emoji[i:i + 256]), np.int64))
            rec = vae(x).float().clamp(-1, 1)
            mse = (((rec - x) / 2) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
            psnrs.append(10 * torch.log10(1.0 / mse))
        result[name] = round(torch.cat(psnrs).mean().item(), 3)
    return result


class LatentCache:
    """Posterior mean and std of every (emoji, colour, composition) image, encoded once (fp16 on the device):
    1906 x 12 x 7 x 2 x 4x16x16 x 2 bytes = 655 MB for the full set."""

    @torch.no_grad()
    def __init__(self, ctx, vae):
        data = ctx.data
        n, colours, comps = data.n, len(captions.COLOURS), len(captions.COMPOSITIONS)
        self.scaling = vae.config.scaling_factor
        grid = np.stack(np.meshgrid(np.arange(n), np.arange(colours), np.arange(comps), indexing="ij"), -1).reshape(-1, 3)
        means, stds = [], []
        start = time.time()
        vae.eval()
        for i in range(0, len(grid), 1024):
            chunk = grid[i:i + 1024]
            with autocast(ctx.device):
                mean, logvar = vae.encode(data.images(chunk[:, 0], chunk[:, 1], chunk[:, 2]))
            means.append(mean.half())
            stds.append(torch.exp(0.5 * logvar.float()).half())
        shape = (n, colours, comps) + tuple(means[0].shape[1:])
        self.mean = torch.cat(means).reshape(shape)
        self.std = torch.cat(stds).reshape(shape)
        log(f"latent cache: {len(grid)} images encoded in {time.time() - start:.1f}s "
            f"({2 * self.mean.numel() * 2 / 1e6:.0f} MB)")

    def sample(self, emoji, colour, comp):
        """Scaled latent samples [B, C, h, w] (fp32) for index arrays [B]."""
        idx = [torch.as_tensor(a, dtype=torch.long, device=self.mean.device) for a in (emoji, colour, comp)]
        mean, std = self.mean[idx[0], idx[1], idx[2]].float(), self.std[idx[0], idx[1], idx[2]].float()
        return (mean + std * torch.randn_like(mean)) * self.scaling


# ---------------------------------------------------------------------------------------------------- denoiser

def _load_or_new(store, name, kind, config):
    if name in store:
        return store[name]
    return Artefact(name, kind, config, None, {"steps": 0})


def train_denoiser(ctx, name, unet_artefact, text_artefact, train_text, seconds, lr, ema_decay, warmup=200):
    """v-prediction training of a UNet (and optionally the text encoder) on the cached latents."""
    budget = Budget(seconds)
    data, device = ctx.data, ctx.device
    cache = ctx.latents()
    unet = unet_artefact.module.to(device).train()
    text = text_artefact.module.to(device)
    text.train(train_text)
    for p in text.parameters():
        p.requires_grad_(train_text)
    params = list(unet.parameters()) + (list(text.parameters()) if train_text else [])
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), weight_decay=0.01)
    ema_unet, ema_text = Ema(unet, ema_decay), Ema(text, ema_decay) if train_text else None
    work = load_work_state(ctx.work, name)
    if work is not None and work["progress"]["steps"] > unet_artefact.progress.get("steps", 0):
        unet.load_state_dict(work["unet"])
        if train_text:
            text.load_state_dict(work["text"])
            ema_text.load_state_dict(work["ema_text"])
        ema_unet.load_state_dict(work["ema_unet"])
        opt.load_state_dict(work["optimizer"])
        unet_artefact.progress = work["progress"]
        log(f"{name}: resumed full-precision state at step {unet_artefact.progress['steps']}")
    log(f"{name}: UNet {count_parameters(unet) / 1e6:.2f} M, text encoder {count_parameters(text) / 1e6:.2f} M "
        f"({'trained' if train_text else 'frozen'}), {seconds:.0f}s, lr {lr}")
    rng = ctx.rng(name, unet_artefact.progress.get("steps", 0))
    forward = maybe_compile(unet, ctx.compile)

    ema_unet_module = copy.deepcopy(unet).eval()
    ema_text_module = copy.deepcopy(text).eval() if train_text else text
    unet_artefact.module = ema_unet_module
    text_artefact.module = ema_text_module

    def publish():
        ema_unet.copy_to(ema_unet_module)
        if train_text:
            ema_text.copy_to(ema_text_module)

    def save_work():
        publish()
        state = {"unet": unet.state_dict(), "ema_unet": ema_unet.state_dict(), "optimizer": opt.state_dict(),
                 "progress": unet_artefact.progress}
        if train_text:
            state.update(text=text.state_dict(), ema_text=ema_text.state_dict())
        save_work_state(ctx.work, name, state)

    def step_fn(step, batch, fraction):
        _set_lr(opt, scheduled_lr(step, fraction, lr, warmup))
        emoji, colour, comp = data.sample(batch, rng)
        tokens = data.caption_tokens(emoji, colour, comp, rng)                 # [B, 77]
        z0 = cache.sample(emoji, colour, comp)                                  # [B, 4, 16, 16]
        t = torch.rand(batch, device=device, dtype=torch.float64) * (sampling.NUM_TRAIN_TIMESTEPS - 1)
        sigma = sampling.t_to_sigma(t).float()[:, None, None, None]            # [B, 1, 1, 1]
        noise = torch.randn_like(z0)
        x_in = (z0 + sigma * noise) / (sigma ** 2 + 1) ** 0.5
        with autocast(device):
            with torch.set_grad_enabled(train_text):
                context = text(tokens).last_hidden_state                        # [B, 77, D]
            v = forward(x_in, t.float(), context)                               # [B, 4, 16, 16]
        loss = F.mse_loss(v.float(), sampling.v_target(z0, noise, sigma))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema_unet.update()
        if train_text:
            ema_text.update()
        ctx.maybe_save(save_work)
        return loss.detach()

    ctx.store.put(unet_artefact)
    ctx.store.put(text_artefact)
    ctx.publish = publish
    try:
        run_steps(ctx, name, budget, step_fn, ctx.batch, unet_artefact.progress)
    finally:
        publish()
        ctx.publish = None
    if train_text:
        text_artefact.progress.update(steps=unet_artefact.progress["steps"], trained_with=name)
    for p in text.parameters():
        p.requires_grad_(False)
    unet_artefact.progress["evaluated"] = False
    save_work()
    ctx.save()


def stage_teacher(ctx, seconds, lr=3e-4):
    store = ctx.store
    if "vae" not in store:
        raise RuntimeError("teacher: no VAE (run the vae stage first, or --resume-from a folder that has one)")
    if "teacher_relu" in store or store.latest_student:
        log("teacher: a ReLU teacher or students exist already; continuing the softmax teacher anyway")
    text = _load_or_new(store, "text_encoder", "text_encoder", text_config(ctx.tiny))
    if text.module is None:
        text.module = init_text_encoder(build_module("text_encoder", text.config))
    unet = _load_or_new(store, "teacher", "unet", unet_config(ctx.tiny))
    if unet.module is None:
        unet.module = build_module("unet", unet.config)
    train_denoiser(ctx, "teacher", unet, text, True, seconds, lr, ema_decay=0.999)


def stage_relu(ctx, seconds, lr=1e-4):
    store = ctx.store
    if "teacher_relu" in store:
        relu = store["teacher_relu"]
    else:
        if "teacher" not in store:
            raise RuntimeError("relu: no softmax teacher to fine-tune")
        config = with_activation(store["teacher"].config, "relu")
        module = build_module("unet", config)
        module.load_state_dict(store["teacher"].module.state_dict())
        relu = Artefact("teacher_relu", "unet", config, module, {"steps": 0, "from": "teacher"})
    train_denoiser(ctx, "teacher_relu", relu, store["text_encoder"], False, seconds, lr, ema_decay=0.998, warmup=50)


# ---------------------------------------------------------------------------------------------------- distillation

def guided_model(unet, context, uncond, w, guidance_input):
    """model(x_in, t) -> v of a teacher at guidance scale w [B]: the guidance-embedded UNet in one pass, or CFG
    over [uncond, cond] for a UNet without the embedding."""
    if guidance_input:
        cond = unet.guidance_embedding(w - 1.0, unet.config)
        return lambda x_in, t: unet(x_in, t, context, timestep_cond=cond)
    return sampling.cfg_model(lambda x, t, c: unet(x, t, c), context, uncond, w)


def stage_distill(ctx, seconds, target_steps=8, first_teacher_steps=32, lr=1e-4):
    """Rounds from the latest student (or the ReLU teacher with CFG at first_teacher_steps) down to target_steps.
    A round that was cut off (its student not marked done) continues first, while its teacher is still stored."""
    store, device = ctx.store, ctx.device
    latest = store[store.latest_student] if store.latest_student else None
    resume = latest if latest is not None and not latest.progress.get("done") else None
    if resume is not None and resume.progress.get("from") not in store:
        log(f"distill: {resume.name} was cut off but its teacher {resume.progress.get('from')} is gone; "
            "taking it as it is")
        resume = None
    if resume is not None:
        teacher_name = resume.progress["from"]
    elif latest is not None:
        teacher_name = latest.name
    elif "teacher_relu" in store or "teacher" in store:
        teacher_name = "teacher_relu" if "teacher_relu" in store else "teacher"
    else:
        raise RuntimeError("distill: no teacher")
    teacher_steps = int(teacher_name.split("_")[1]) if teacher_name.startswith("student_") else first_teacher_steps
    rounds = []
    while teacher_steps // 2 >= target_steps and teacher_steps > 1:
        rounds.append(teacher_steps // 2)
        teacher_steps //= 2
    if not rounds:
        log(f"distill: {teacher_name} already reaches {target_steps} steps")
        return
    log(f"distill: from {teacher_name}, rounds to {rounds} steps, {seconds / len(rounds):.0f}s each"
        + (f" (continuing {resume.name})" if resume is not None else ""))
    text = store["text_encoder"].module.to(device).eval()
    for student_steps in rounds:
        teacher_artefact = store[teacher_name]
        teacher = teacher_artefact.module.to(device).eval()
        teacher_guided = teacher.config.time_cond_proj_dim is not None
        name = f"student_{student_steps}"
        if resume is not None and resume.name == name:
            artefact = resume
            artefact.module = artefact.module.to(device).train()
        else:
            if teacher_guided:
                student = build_module("unet", teacher_artefact.config)
                student.load_state_dict(teacher.state_dict())
            else:
                student = student_from_teacher(type(teacher), teacher.state_dict(), teacher_artefact.config)
            artefact = Artefact(name, "unet", student.config, student.to(device).train(),
                                {"steps": 0, "from": teacher_name, "sampling_steps": student_steps})
        distill_round(ctx, artefact, teacher, teacher_guided, text, student_steps, seconds / len(rounds), lr)
        teacher_name = name


def distill_round(ctx, artefact, teacher, teacher_guided, text, steps, seconds, lr, warmup=50):
    budget = Budget(seconds)
    data, device = ctx.data, ctx.device
    student = artefact.module
    cache = ctx.latents()
    opt = torch.optim.AdamW(student.parameters(), lr=lr, betas=(0.9, 0.999), weight_decay=0.0)
    ema = Ema(student, 0.995)
    student_sigmas = sampling.trailing_sigmas(steps).to(device)                 # [N + 1]
    teacher_sigmas = sampling.trailing_sigmas(2 * steps).to(device)             # [2N + 1]
    with torch.no_grad():
        uncond_one = text(data.empty_tokens(1)).last_hidden_state              # [1, 77, D]
    work = load_work_state(ctx.work, artefact.name)
    if work is not None and work["progress"]["steps"] > artefact.progress.get("steps", 0):
        student.load_state_dict(work["unet"])
        ema.load_state_dict(work["ema_unet"])
        opt.load_state_dict(work["optimizer"])
        artefact.progress = work["progress"]
        log(f"{artefact.name}: resumed full-precision state at step {artefact.progress['steps']}")
    rng = ctx.rng(artefact.name, artefact.progress.get("steps", 0))
    forward = maybe_compile(student, ctx.compile)
    ema_module = copy.deepcopy(student).eval()

    def publish():
        ema.copy_to(ema_module)

    def save_work():
        publish()
        save_work_state(ctx.work, artefact.name, {"unet": student.state_dict(), "ema_unet": ema.state_dict(),
                                                  "optimizer": opt.state_dict(), "progress": artefact.progress})

    def step_fn(step, batch, fraction):
        _set_lr(opt, scheduled_lr(step, fraction, lr, warmup))
        emoji, colour, comp = data.sample(batch, rng)
        tokens = data.caption_tokens(emoji, colour, comp, rng, empty_share=0.05)
        z0 = cache.sample(emoji, colour, comp)                                  # [B, 4, 16, 16]
        k = torch.as_tensor(rng.randint(0, steps, batch), device=device)
        s_a, s_b, s_c = student_sigmas[k], teacher_sigmas[2 * k + 1], student_sigmas[k + 1]  # [B] float64
        w = torch.as_tensor(rng.uniform(*GUIDANCE_RANGE, batch), dtype=torch.float32, device=device)
        x_a = z0 + s_a.float()[:, None, None, None] * torch.randn_like(z0)
        with torch.no_grad(), autocast(device):
            context = text(tokens).last_hidden_state                           # [B, 77, D]
            model = guided_model(teacher, context, uncond_one.expand(batch, -1, -1), w, teacher_guided)
            x_b = sampling.euler_step(x_a, sampling.denoise(model, x_a, s_a).float(), s_a, s_b)
            x_c = sampling.euler_step(x_b, sampling.denoise(model, x_b, s_b).float(), s_b, s_c)
        # The one student step from s_a to s_c that lands on x_c: D* = x_a - (x_c - x_a) s_a / (s_c - s_a),
        # and D* = x_c at the final step (s_c = 0).
        ratio = (s_a / (s_c - s_a)).float()[:, None, None, None]
        target_d = torch.where((s_c == 0)[:, None, None, None], x_c, x_a - (x_c - x_a) * ratio)
        c_skip, c_out, c_in = (c.float()[:, None, None, None] for c in sampling.scalings(s_a))
        target_v = (target_d - c_skip * x_a) / c_out
        cond = student.guidance_embedding(w - 1.0, student.config)
        with autocast(device):
            v = forward(x_a * c_in, sampling.sigma_to_t(s_a).float(), context, timestep_cond=cond)
        loss = F.mse_loss(v.float(), target_v)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        ema.update()
        ctx.maybe_save(save_work)
        return loss.detach()

    log(f"{artefact.name}: distilling {2 * steps} -> {steps} steps, {seconds:.0f}s")
    artefact.module = ema_module
    ctx.store.put(artefact)
    ctx.publish = publish
    try:
        run_steps(ctx, artefact.name, budget, step_fn, ctx.batch, artefact.progress)
    finally:
        publish()
        ctx.publish = None
    artefact.progress.update(evaluated=False, done=True)
    save_work()
    ctx.save()


# ---------------------------------------------------------------------------------------------------- evaluation

@torch.no_grad()
def generate(ctx, unet, tokens, steps, cfg, seeds, batch=256):
    """Images float [N, 3, 64, 64] in [-1, 1] (CPU) for tokens [N, 77] with one seed each: noise from torch's CPU
    generator (torch.manual_seed(seed); randn(1, C, h, w)), the trailing-grid DDIM sampler, CFG at scale `cfg` (or
    the guidance embedding, for students), fp32."""
    device = ctx.device
    store = ctx.store
    text, vae = store["text_encoder"].module.to(device).eval(), store["vae"].module.to(device).eval()
    unet = unet.to(device).eval()
    guided = unet.config.time_cond_proj_dim is not None
    latent_shape = (unet.config.in_channels, 16, 16)
    uncond_one = text(ctx.data.empty_tokens(1)).last_hidden_state
    images = []
    for i in range(0, len(tokens), batch):
        chunk = tokens[i:i + batch]
        b = len(chunk)
        noise = torch.cat([torch.randn((1,) + latent_shape, generator=torch.Generator().manual_seed(int(s)))
                           for s in seeds[i:i + batch]]).to(device)
        context = text(chunk).last_hidden_state
        w = torch.full((b,), float(cfg), device=device)
        if guided or cfg != 1.0:
            model = guided_model(unet, context, uncond_one.expand(b, -1, -1), w, guided)
        else:
            model = lambda x_in, t: unet(x_in, t, context)  # noqa: E731
        z = sampling.sample(model, noise, steps)
        images.append(vae.decode(z / vae.config.scaling_factor).float().clamp(-1, 1).cpu())
    return torch.cat(images)


def eval_sets(ctx):
    """(name, emoji [N], colour [N], seeds [N]) of the evaluation prompts: held-out pairs x 2 seeds, 240 seen
    training pairs x 1 seed, held-out emoji x 12 colours x 1 seed (smaller with --tiny)."""
    data = ctx.data
    limit = 8 if ctx.tiny else None
    hp = data.heldout_pairs[:limit]
    sets = [("heldout_pairs", np.repeat(hp[:, 0], 2), np.repeat(hp[:, 1], 2), np.tile([0, 1], len(hp)) + 1000 * np.repeat(np.arange(len(hp)), 2))]
    seen = data.train_pairs[ctx.rng("seen", 0).randint(0, len(data.train_pairs), 8 if ctx.tiny else 240)]
    sets.append(("seen_pairs", seen[:, 0], seen[:, 1], 500_000 + np.arange(len(seen))))
    if len(data.heldout_emoji):
        e, c = (a.ravel() for a in np.meshgrid(data.heldout_emoji, np.arange(len(captions.COLOURS)), indexing="ij"))
        sets.append(("heldout_emoji", e[:limit], c[:limit], 900_000 + np.arange(len(e[:limit]))))
    return [s for s in sets if len(s[1])]


def variants_of(name, artefact, cfgs, tiny):
    """(steps, cfg) settings to measure for one UNet."""
    if artefact.config.time_cond_proj_dim is not None:
        steps = artefact.progress.get("sampling_steps", int(name.split("_")[1]))
        return [(steps, w) for w in cfgs]
    return [(10 if tiny else 50, w) for w in cfgs] + [(8, w) for w in cfgs]


def stage_eval(ctx, seconds, cfgs=(DEFAULT_CFG,), force=False, save=True, only=None):
    """Measures every UNet not measured yet (all with force), writes eval records and samples.png.
    `only`: a list of (unet name, steps) to measure instead of every variant of every UNet."""
    from score import DEFAULT_CLASSIFIER, Scorer
    from pngio import write_png
    from compose import to_uint8
    candidates = [ctx.classifier] if ctx.classifier else []
    candidates += [os.path.join(d, "emoji_classifier.safetensors") for d in (ctx.out, ctx.resume_from) if d]
    candidates.append(DEFAULT_CLASSIFIER)
    classifier = next((c for c in candidates if os.path.isfile(c)), None)
    if classifier is None:
        raise RuntimeError(f"eval: no classifier in {', '.join(candidates)} (run the classifier stage)")
    log(f"eval: classifier {classifier}")
    scorer = Scorer(classifier, ctx.device)
    budget = Budget(seconds)
    data = ctx.data
    sets = eval_sets(ctx)
    real = {name: data.images(e, c, np.zeros_like(e)).cpu() for name, e, c, _ in sets}
    demo = [(data.names.index(n), captions.COLOUR_NAMES.index(c)) for n, c in DEMO_PROMPTS if n in data.names]
    demo += [(int(e), int(c)) for e, c in data.heldout_pairs[::60][:4]]  # last rows: held-out pairs
    if not demo:
        demo = [(0, 6), (1, 4)]
    demo_e, demo_c = np.array([d[0] for d in demo]), np.array([d[1] for d in demo])
    columns = [to_uint8(data.images(demo_e, demo_c, np.zeros_like(demo_e)))]
    labels = ["real"]
    todo = [(n, a) for n, a in sorted(ctx.store.artefacts.items())
            if a.kind == "unet" and (force or not a.progress.get("evaluated", False))]
    if only is not None:
        todo = [(n, a) for n, a in todo if any(n == o for o, _ in only)]
    for name, artefact in todo:
        settings = variants_of(name, artefact, cfgs, ctx.tiny) if only is None else \
            [(steps, w) for o, steps in only if o == name for w in cfgs]
        for steps, cfg in settings:
            if budget.over():
                log(f"eval: time budget spent; {name} {steps} steps cfg {cfg} not measured")
                break
            start = time.time()
            record = {"stage": "eval", "variant": name, "steps": steps, "cfg": cfg,
                      "attention": artefact.config.attention_activation,
                      "guidance_embedding": artefact.config.time_cond_proj_dim is not None,
                      "train_steps": artefact.progress.get("steps")}
            for set_name, e, c, seeds in sets:
                images = generate(ctx, artefact.module, data.eval_tokens(e, c), steps, cfg, seeds)
                record[set_name] = scorer.score(images, e, c, real[set_name])
            images = generate(ctx, artefact.module, data.eval_tokens(demo_e, demo_c), steps, cfg, np.arange(len(demo)))
            columns.append(to_uint8(images))
            labels.append(f"{name} {steps} steps cfg {cfg}")
            record["seconds"] = round(time.time() - start, 1)
            ctx.jsonlog.write(**record)
            hp = record["heldout_pairs"]
            log(f"eval {name} {steps} steps cfg {cfg}: held-out prompt acc {hp['prompt_acc']:.3f} (emoji "
                f"{hp['emoji_acc']:.3f}, colour {hp['colour_acc']:.3f}, FD {hp['fd']:.2f}) in {record['seconds']}s")
        else:
            artefact.progress["evaluated"] = True
    grid = np.concatenate([np.concatenate(list(col), axis=0) for col in columns], axis=1)  # [rows*64, cols*64, 3]
    path = os.path.join(ctx.out, "samples.png")
    write_png(path, grid, {"Description": "rows: " + "; ".join(
        f"{data.names[e]} on {captions.COLOUR_NAMES[c]}" for e, c in demo) + " | columns: " + "; ".join(labels)})
    ctx.jsonlog.write(stage="eval_grid", rows=[f"{data.names[e]} on a {captions.COLOUR_NAMES[c]} background"
                                               for e, c in demo], columns=labels)
    log(f"eval: wrote {path} ({len(demo)} prompts x {len(labels)} columns: {', '.join(labels)})")
    if save:
        ctx.save()

#!/usr/bin/env python3
"""Self-test of the sdref package (not run by CI):

    OMP_NUM_THREADS=1 /usr/bin/python3 tools/reference/test_sdref.py [-v]

Checks the SD 1.5 key set against the published model sizes, the LDM mapping both ways, fp16 save/load in both
layouts, that each MobileDiffusion option changes the key set as specified, config validation, the safetensors
reader's rejections, and numerical definitions (attention, gated feed-forward, separable conv, embeddings).
Full-size models are built on the meta device, so no test allocates SD-sized weights.
"""

from __future__ import annotations

import json
import math
import struct
import sys
import tempfile
import unittest
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sdref  # noqa: E402
from sdref import convert, safetensors_file  # noqa: E402
from sdref.attention import Attention, FeedForward, scaled_dot_product_attention  # noqa: E402
from sdref.config import AutoencoderKLConfig, ClipTextConfig, UNet2DConditionConfig  # noqa: E402
from sdref.meta import meta_device, parameter_count, shapes_by_key  # noqa: E402
from sdref.resnet import SeparableConv2d  # noqa: E402


def sd15_meta():
    configs = sdref.sd15()
    with meta_device():
        return (configs, sdref.UNet2DConditionModel(configs.unet), sdref.ClipTextModel(configs.text_encoder),
                sdref.AutoencoderKL(configs.vae))


class Sd15KeySet(unittest.TestCase):
    """Counts and parameter totals of the published SD 1.5 components (diffusers / transformers)."""

    @classmethod
    def setUpClass(cls):
        cls.configs, cls.unet, cls.text, cls.vae = sd15_meta()

    def test_unet(self):
        shapes = shapes_by_key(self.unet)
        self.assertEqual(len(shapes), 686)
        self.assertEqual(parameter_count(self.unet), 859_520_964)
        expected = {
            "conv_in.weight": (320, 4, 3, 3),
            "time_embedding.linear_1.weight": (1280, 320),
            "down_blocks.0.attentions.0.proj_in.weight": (320, 320, 1, 1),
            "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": (320, 768),
            "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight": (2560, 320),
            "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2.weight": (320, 1280),
            "down_blocks.1.resnets.0.conv_shortcut.weight": (640, 320, 1, 1),
            "down_blocks.2.downsamplers.0.conv.weight": (1280, 1280, 3, 3),
            "mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight": (1280, 1280),
            "up_blocks.0.resnets.0.conv1.weight": (1280, 2560, 3, 3),
            "up_blocks.1.resnets.2.conv1.weight": (1280, 1920, 3, 3),
            "up_blocks.3.resnets.0.conv1.weight": (320, 960, 3, 3),
            "up_blocks.3.resnets.2.conv_shortcut.weight": (320, 640, 1, 1),
            "up_blocks.2.upsamplers.0.conv.weight": (640, 640, 3, 3),
            "conv_out.weight": (4, 320, 3, 3),
        }
        for key, shape in expected.items():
            self.assertEqual(shapes[key], shape, key)
        self.assertNotIn("up_blocks.3.upsamplers.0.conv.weight", shapes)
        self.assertNotIn("down_blocks.3.attentions.0.norm.weight", shapes)

    def test_text_encoder(self):
        shapes = shapes_by_key(self.text)
        self.assertEqual(len(shapes), 196)
        self.assertEqual(parameter_count(self.text), 123_060_480)
        self.assertEqual(shapes["text_model.embeddings.token_embedding.weight"], (49408, 768))
        self.assertEqual(shapes["text_model.embeddings.position_embedding.weight"], (77, 768))
        self.assertEqual(shapes["text_model.encoder.layers.11.mlp.fc1.weight"], (3072, 768))
        self.assertEqual(shapes["text_model.final_layer_norm.bias"], (768,))

    def test_vae(self):
        shapes = shapes_by_key(self.vae)
        self.assertEqual(len(shapes), 248)
        self.assertEqual(parameter_count(self.vae), 83_653_863)
        self.assertEqual(shapes["encoder.conv_out.weight"], (8, 512, 3, 3))
        self.assertEqual(shapes["quant_conv.weight"], (8, 8, 1, 1))
        self.assertEqual(shapes["decoder.up_blocks.3.resnets.0.conv1.weight"], (128, 256, 3, 3))
        self.assertEqual(shapes["decoder.up_blocks.3.resnets.0.conv_shortcut.weight"], (128, 256, 1, 1))
        self.assertEqual(shapes["encoder.mid_block.attentions.0.to_q.weight"], (512, 512))


class LdmMapping(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.configs, cls.unet, cls.text, cls.vae = sd15_meta()

    def test_every_sd15_key_round_trips(self):
        c = self.configs
        seen = set()
        for component, module, back in (
                ("unet", self.unet, lambda k: convert.unet_key_from_ldm(k[len(convert.UNET_PREFIX):], c.unet)),
                ("text_encoder", self.text, lambda k: k[len(convert.TEXT_PREFIX):]),
                ("vae", self.vae, lambda k: convert.vae_key_from_ldm(k[len(convert.VAE_PREFIX):], c.vae))):
            for key in module.state_dict():
                ldm = convert.single_file_key(component, key, c.unet, c.vae)
                self.assertNotIn(ldm, seen)
                seen.add(ldm)
                self.assertEqual(back(ldm), key)
        self.assertEqual(len(seen), 686 + 196 + 248)

    def test_known_ldm_names(self):
        c = self.configs
        ldm = {convert.single_file_key(comp, k, c.unet, c.vae)
               for comp, m in (("unet", self.unet), ("text_encoder", self.text), ("vae", self.vae))
               for k in m.state_dict()}
        for name in ("model.diffusion_model.input_blocks.0.0.weight",
                     "model.diffusion_model.input_blocks.1.0.in_layers.0.weight",
                     "model.diffusion_model.input_blocks.1.1.proj_in.weight",
                     "model.diffusion_model.input_blocks.3.0.op.weight",
                     "model.diffusion_model.input_blocks.4.0.skip_connection.weight",
                     "model.diffusion_model.input_blocks.11.0.out_layers.3.weight",
                     "model.diffusion_model.time_embed.2.weight",
                     "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight",
                     "model.diffusion_model.middle_block.2.emb_layers.1.weight",
                     "model.diffusion_model.output_blocks.2.1.conv.weight",
                     "model.diffusion_model.output_blocks.5.2.conv.weight",
                     "model.diffusion_model.output_blocks.8.2.conv.weight",
                     "model.diffusion_model.output_blocks.11.0.skip_connection.weight",
                     "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias",
                     "model.diffusion_model.out.2.weight",
                     "cond_stage_model.transformer.text_model.final_layer_norm.weight",
                     "first_stage_model.encoder.down.0.downsample.conv.weight",
                     "first_stage_model.encoder.down.1.block.0.nin_shortcut.weight",
                     "first_stage_model.encoder.mid.attn_1.q.weight",
                     "first_stage_model.encoder.norm_out.weight",
                     "first_stage_model.decoder.up.3.upsample.conv.weight",
                     "first_stage_model.decoder.up.0.block.2.conv2.weight",
                     "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight",
                     "first_stage_model.post_quant_conv.weight"):
            self.assertIn(name, ldm)
        self.assertNotIn("first_stage_model.decoder.up.0.upsample.conv.weight", ldm)
        self.assertNotIn("model.diffusion_model.output_blocks.11.2.conv.weight", ldm)
        # the reversed decoder: diffusers up_blocks.0 (deepest) is LDM up.3
        self.assertEqual(convert.vae_key_to_ldm("decoder.up_blocks.0.resnets.0.conv1.weight", self.configs.vae),
                         "decoder.up.3.block.0.conv1.weight")

    def test_tensors_round_trip_with_conv_reshape(self):
        torch.manual_seed(0)
        models = sdref.StableDiffusionModels.from_configs(sdref.tiny_sd15())
        c = models.configs
        single = convert.to_single_file(models.unet.state_dict(), models.text_encoder.state_dict(),
                                        models.vae.state_dict(), c.unet, c.vae)
        self.assertEqual(tuple(single["first_stage_model.encoder.mid.attn_1.q.weight"].shape), (32, 32, 1, 1))
        self.assertEqual(single[convert.POSITION_IDS_KEY].dtype, torch.int64)
        self.assertEqual(single["alphas_cumprod"].shape, (1000,))
        unet, text, vae, ignored = convert.from_single_file(single, c.unet, c.vae)
        self.assertEqual(len(ignored), 13)
        for original, restored in ((models.unet, unet), (models.text_encoder, text), (models.vae, vae)):
            self.assertEqual(set(original.state_dict()), set(restored))
            for k, v in original.state_dict().items():
                self.assertTrue(torch.equal(v, restored[k]), k)

    def test_schedule_buffers(self):
        buffers = convert.ldm_schedule_buffers()
        betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
        self.assertAlmostEqual(buffers["betas"][0].item(), 0.00085, places=9)
        self.assertAlmostEqual(buffers["betas"][-1].item(), 0.012, places=8)
        self.assertAlmostEqual(buffers["alphas_cumprod"][-1].item(), torch.cumprod(1 - betas, 0)[-1].item(), places=9)
        self.assertEqual(buffers["alphas_cumprod_prev"][0].item(), 1.0)

    def test_unknown_keys_rejected(self):
        c = sdref.sd15()
        with self.assertRaises(ValueError):
            convert.unet_key_from_ldm("input_blocks.12.0.in_layers.0.weight", c.unet)
        with self.assertRaises(ValueError):
            convert.unet_key_from_ldm("input_blocks.3.1.proj_in.weight", c.unet)
        with self.assertRaises(ValueError):
            convert.unet_key_to_ldm("time_embedding.cond_proj.weight", c.unet)
        with self.assertRaises(ValueError):
            convert.vae_key_from_ldm("decoder.up.0.upsample.conv.weight", c.vae)


class SaveLoad(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(1)
        self.models = sdref.StableDiffusionModels.from_configs(sdref.tiny_sd15())
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def assert_same_fp16(self, loaded):
        for original, restored in ((self.models.unet, loaded.unet), (self.models.text_encoder, loaded.text_encoder),
                                   (self.models.vae, loaded.vae)):
            restored_sd = restored.state_dict()
            for k, v in original.state_dict().items():
                self.assertTrue(torch.equal(v.half().float(), restored_sd[k]), k)

    def test_diffusers_folder_fp16(self):
        sdref.save_diffusers(self.models, self.dir / "m", dtype="fp16")
        for rel in ("model_index.json", "unet/config.json", "text_encoder/config.json", "vae/config.json",
                    "scheduler/scheduler_config.json", "unet/diffusion_pytorch_model.safetensors",
                    "text_encoder/model.safetensors", "vae/diffusion_pytorch_model.safetensors"):
            self.assertTrue((self.dir / "m" / rel).is_file(), rel)
        header, _, _ = safetensors_file.read_header(self.dir / "m" / "unet" / "diffusion_pytorch_model.safetensors")
        self.assertEqual({v["dtype"] for v in header.values()}, {"F16"})
        scheduler = json.loads((self.dir / "m" / "scheduler" / "scheduler_config.json").read_text())
        for key in ("prediction_type", "beta_schedule", "beta_start", "beta_end", "num_train_timesteps", "steps_offset"):
            self.assertIn(key, scheduler)
        self.assert_same_fp16(sdref.load_diffusers(self.dir / "m"))

    def test_single_file_fp16(self):
        path = self.dir / "m.safetensors"
        sdref.save_single_file(self.models, path, dtype="fp16")
        header, _, _ = safetensors_file.read_header(path)
        self.assertEqual(header[convert.POSITION_IDS_KEY]["dtype"], "I64")
        self.assertEqual(header["model.diffusion_model.input_blocks.0.0.weight"]["dtype"], "F16")
        self.assert_same_fp16(sdref.load_single_file(path, sdref.tiny_sd15()))

    def test_wrong_config_is_a_clear_error(self):
        path = self.dir / "m.safetensors"
        sdref.save_single_file(self.models, path)
        with self.assertRaises(ValueError):
            sdref.load_single_file(path, sdref.sd15())


class SafetensorsFile(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "t.safetensors"

    def tearDown(self):
        self.tmp.cleanup()

    def test_round_trip_and_layout(self):
        tensors = {"b": torch.randn(3, 2).to(torch.bfloat16), "a": torch.randn(5).half(), "c": torch.arange(4),
                   "d": torch.randn(2, 2, dtype=torch.float64), "e": torch.tensor([True, False]),
                   "s": torch.tensor(3.5), "z": torch.zeros(0, 3)}
        size = safetensors_file.save_file(tensors, self.path, {"k": "v"})
        raw = self.path.read_bytes()
        self.assertEqual(size, len(raw))
        (n,) = struct.unpack("<Q", raw[:8])
        self.assertEqual(n % 8, 0)
        header = json.loads(raw[8:8 + n])
        names = [k for k in header if k != "__metadata__"]
        self.assertEqual(names, ["c", "d", "s", "z", "a", "b", "e"])  # alignment descending, then name
        loaded = safetensors_file.load_file(self.path)
        for k, v in tensors.items():
            self.assertEqual(loaded[k].dtype, v.dtype, k)
            self.assertTrue(torch.equal(loaded[k], v), k)
        self.assertEqual(safetensors_file.load_metadata(self.path), {"k": "v"})

    def write_raw(self, header: dict, data: bytes) -> None:
        h = json.dumps(header).encode()
        self.path.write_bytes(struct.pack("<Q", len(h)) + h + data)

    def test_rejections(self):
        good = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
        self.write_raw(good, bytes(8))
        safetensors_file.read_header(self.path)
        cases = {
            "trailing bytes": (good, bytes(9)),
            "truncated": (good, bytes(7)),
            "hole": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8)),
            "size mismatch": ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
            "bad dtype": ({"a": {"dtype": "F31", "shape": [2], "data_offsets": [0, 8]}}, bytes(8)),
            "overlap": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8)),
        }
        for name, (header, data) in cases.items():
            self.write_raw(header, data)
            with self.assertRaises(ValueError, msg=name):
                safetensors_file.read_header(self.path)
        h = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
        self.path.write_bytes(struct.pack("<Q", len(h)) + h + bytes(4))
        with self.assertRaises(ValueError):
            safetensors_file.read_header(self.path)
        self.path.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
        with self.assertRaises(ValueError):
            safetensors_file.read_header(self.path)


class MobileOptions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.config = sdref.tiny_mobile().unet
        cls.keys = set(sdref.UNet2DConditionModel(cls.config).state_dict())
        cls.shapes = shapes_by_key(sdref.UNet2DConditionModel(cls.config))

    def test_no_attention_at_level_zero(self):
        self.assertFalse(any(k.startswith("down_blocks.0.attentions") for k in self.keys))
        self.assertFalse(any(k.startswith("up_blocks.2.attentions") for k in self.keys))
        self.assertTrue(any(k.startswith("down_blocks.1.attentions.0") for k in self.keys))

    def test_cross_only_blocks(self):
        level1 = [k for k in self.keys if k.startswith("down_blocks.1.attentions.0.transformer_blocks.0.")]
        self.assertFalse(any(".attn1." in k or ".norm1." in k for k in level1))
        self.assertTrue(any(".attn2." in k for k in level1))
        self.assertIn("down_blocks.2.attentions.0.transformer_blocks.1.attn1.to_q.weight", self.keys)
        self.assertIn("mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight", self.keys)
        self.assertNotIn("mid_block.attentions.0.transformer_blocks.1.attn1.to_q.weight", self.keys)

    def test_shared_kv(self):
        self.assertFalse(any(k.endswith(("to_k.weight", "to_v.weight")) for k in self.keys))
        self.assertEqual(self.shapes["down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_kv.weight"], (32, 16))

    def test_swiglu_ff_mult(self):
        self.assertEqual(self.shapes["down_blocks.2.attentions.0.transformer_blocks.0.ff.net.0.proj.weight"],
                         (2 * 3 * 32, 32))

    def test_separable_convs(self):
        self.assertIn("down_blocks.0.resnets.0.conv1.weight", self.keys)
        self.assertEqual(self.shapes["down_blocks.1.resnets.0.conv1.depthwise.weight"], (16, 1, 3, 3))
        self.assertEqual(self.shapes["down_blocks.1.resnets.0.conv1.pointwise.weight"], (32, 16, 1, 1))
        self.assertNotIn("down_blocks.1.resnets.0.conv1.depthwise.bias", self.keys)
        self.assertIn("mid_block.resnets.1.conv2.pointwise.bias", self.keys)
        self.assertIn("up_blocks.0.resnets.0.conv1.depthwise.weight", self.keys)
        self.assertIn("up_blocks.2.resnets.0.conv1.weight", self.keys)
        self.assertIn("down_blocks.1.downsamplers.0.conv.weight", self.keys)

    def test_layers_per_block_list(self):
        def count(prefix):
            return len({k.split(".")[3] for k in self.keys if k.startswith(prefix)})
        self.assertEqual([count(f"down_blocks.{i}.resnets.") for i in range(3)], [1, 1, 2])
        self.assertEqual([count(f"up_blocks.{i}.resnets.") for i in range(3)], [3, 2, 2])

    def test_guidance_embedding_input(self):
        self.assertEqual(self.shapes["time_embedding.cond_proj.weight"], (16, 32))
        self.assertNotIn("time_embedding.cond_proj.bias", self.keys)

    def test_options_off_give_sd_keys(self):
        base = dict(down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                    up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"], block_out_channels=[16, 32],
                    norm_num_groups=8, cross_attention_dim=16, attention_head_dim=2)
        plain = set(sdref.UNet2DConditionModel(UNet2DConditionConfig(**base)).state_dict())
        explicit = set(sdref.UNet2DConditionModel(UNet2DConditionConfig(
            **base, transformer_layers_per_block=[0, 1], self_attention_per_block=[True, True],
            separable_conv_per_block=[False, False], shared_kv_projection=False, ff_activation="geglu",
            ff_mult=4, attention_activation="relu")).state_dict())
        self.assertEqual(plain, explicit)


class Configs(unittest.TestCase):
    def test_json_round_trip(self):
        with tempfile.TemporaryDirectory() as d:
            for configs in (sdref.sd15(), sdref.tiny_sd15(), sdref.tiny_mobile()):
                for cfg, cls in ((configs.unet, UNet2DConditionConfig), (configs.text_encoder, ClipTextConfig),
                                 (configs.vae, AutoencoderKLConfig)):
                    path = Path(d) / "config.json"
                    cfg.save_json(path)
                    self.assertEqual(cls.from_json(path), cfg)

    def test_sd_config_has_no_extension_keys(self):
        data = sdref.sd15().unet.to_dict()
        for key in UNet2DConditionConfig.EXTENSION_KEYS:
            self.assertNotIn(key, data)
        self.assertEqual(data["attention_head_dim"], 8)

    def test_unknown_keys_ignored_unsupported_rejected(self):
        data = sdref.sd15().unet.to_dict()
        data["some_future_key"] = 1
        self.assertEqual(UNet2DConditionConfig.from_dict(data), sdref.sd15().unet)
        for key, value in (("addition_embed_type", "text_time"), ("only_cross_attention", True),
                           ("attention_activation", "sigmoid"), ("ff_activation", "gelu")):
            with self.assertRaises(ValueError, msg=key):
                UNet2DConditionConfig.from_dict({**data, key: value})

    def test_block_types_must_match_depths(self):
        with self.assertRaises(ValueError):
            UNet2DConditionConfig(transformer_layers_per_block=[1, 1, 1, 1])
        with self.assertRaises(ValueError):
            UNet2DConditionConfig(transformer_layers_per_block=[1, 1, 0, 0])
        with self.assertRaises(ValueError):
            UNet2DConditionConfig(layers_per_block=[2, 2, 2])
        with self.assertRaises(ValueError):
            UNet2DConditionConfig(block_out_channels=[320, 640, 1280, 1000])


class Numerics(unittest.TestCase):
    def test_relu_attention_definition(self):
        torch.manual_seed(0)
        q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 4)
        expected = torch.relu(q @ k.transpose(-1, -2) / 2.0) / 7 @ v
        self.assertTrue(torch.allclose(scaled_dot_product_attention(q, k, v, "relu"), expected, atol=1e-6))

    def test_softmax_paths_agree(self):
        torch.manual_seed(0)
        q, k, v = (torch.randn(2, 3, 6, 8, dtype=torch.float64) for _ in range(3))
        with sdref.reference_mode():
            reference = scaled_dot_product_attention(q, k, v, causal=True)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(8) + torch.full((6, 6), float("-inf"), dtype=torch.float64).triu(1)
        self.assertTrue(torch.allclose(reference, scores.softmax(-1) @ v, atol=1e-12))
        self.assertTrue(torch.allclose(scaled_dot_product_attention(q, k, v, causal=True), reference, atol=1e-12))

    def test_shared_kv_uses_one_projection(self):
        torch.manual_seed(0)
        a = Attention(8, 2, 4, 6, shared_kv=True)
        b = Attention(8, 2, 4, 6, shared_kv=False)
        with torch.no_grad():
            b.to_q.weight.copy_(a.to_q.weight)
            b.to_k.weight.copy_(a.to_kv.weight)
            b.to_v.weight.copy_(a.to_kv.weight)
            b.to_out[0].load_state_dict(a.to_out[0].state_dict())
        x, ctx = torch.randn(2, 5, 8), torch.randn(2, 3, 6)
        self.assertTrue(torch.allclose(a(x, ctx), b(x, ctx), atol=1e-6))

    def test_gated_feed_forward_split_order(self):
        torch.manual_seed(0)
        for activation, gate in (("geglu", F.gelu), ("swiglu", F.silu)):
            ff = FeedForward(4, mult=3, activation=activation)
            x = torch.randn(2, 5, 4)
            projected = ff.net[0].proj(x)
            expected = ff.net[2](projected[..., :12] * gate(projected[..., 12:]))
            self.assertTrue(torch.allclose(ff(x), expected, atol=1e-6), activation)

    def test_separable_conv_is_depthwise_then_pointwise(self):
        torch.manual_seed(0)
        conv = SeparableConv2d(3, 5)
        x = torch.randn(1, 3, 6, 7)
        dense = torch.einsum("oc,ckl->ockl", conv.pointwise.weight[:, :, 0, 0], conv.depthwise.weight[:, 0])
        expected = F.conv2d(x, dense, conv.pointwise.bias, padding=1)
        self.assertTrue(torch.allclose(conv(x), expected, atol=1e-5))

    def test_timestep_embedding_values(self):
        emb = sdref.timestep_embedding(torch.tensor([0.0, 10.5]), 8, flip_sin_to_cos=True, freq_shift=0,
                                       dtype=torch.float64)
        freqs = torch.exp(-math.log(10000.0) * torch.arange(4, dtype=torch.float64) / 4)
        self.assertTrue(torch.equal(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4, dtype=torch.float64)))
        self.assertTrue(torch.allclose(emb[1], torch.cat([torch.cos(10.5 * freqs), torch.sin(10.5 * freqs)])))
        g = sdref.guidance_scale_embedding(torch.tensor([0.5]), 6, dtype=torch.float64)
        gf = torch.exp(-math.log(10000.0) * torch.arange(3, dtype=torch.float64) / 2)
        self.assertTrue(torch.allclose(g[0], torch.cat([torch.sin(500 * gf), torch.cos(500 * gf)])))

    def test_unet_batch_independent_and_fractional_timesteps(self):
        torch.manual_seed(0)
        for configs in (sdref.tiny_sd15(), sdref.tiny_mobile()):
            unet = sdref.UNet2DConditionModel(configs.unet).double()
            c = configs.unet
            x = torch.randn(3, c.in_channels, 8, 8, dtype=torch.float64)
            ctx = torch.randn(3, 77, c.cross_attention_dim, dtype=torch.float64)
            t = torch.tensor([999.0, 10.5, 10.0], dtype=torch.float64)
            cond = (sdref.UNet2DConditionModel.guidance_embedding(torch.tensor([1.0, 2.0, 3.0]), c, torch.float64)
                    if c.time_cond_proj_dim else None)
            with torch.no_grad():
                batched = unet(x, t, ctx, cond)
                for i in range(3):
                    single = unet(x[i:i + 1], t[i:i + 1], ctx[i:i + 1], None if cond is None else cond[i:i + 1])
                    self.assertTrue(torch.allclose(batched[i:i + 1], single, atol=1e-10))
                self.assertFalse(torch.allclose(batched[1], unet(x[1:2], t[2:3], ctx[1:2],
                                                                 None if cond is None else cond[1:2])[0]))

    def test_text_encoder_is_causal(self):
        torch.manual_seed(0)
        model = sdref.ClipTextModel(sdref.tiny_sd15().text_encoder).double()
        ids = torch.randint(0, 49406, (1, 77))
        changed = ids.clone()
        changed[0, 40] = (ids[0, 40] + 1) % 49406
        with torch.no_grad():
            a, b = model(ids).last_hidden_state, model(changed).last_hidden_state
        self.assertTrue(torch.equal(a[:, :40], b[:, :40]))
        self.assertFalse(torch.allclose(a[:, 40:], b[:, 40:]))

    def test_vae_shapes_and_latent_channels(self):
        vae = sdref.AutoencoderKL(sdref.tiny_mobile().vae)
        with torch.no_grad():
            mean, logvar = vae.encode(torch.randn(1, 3, 16, 12))
            self.assertEqual(tuple(mean.shape), (1, 3, 8, 6))
            self.assertEqual(tuple(vae.decode(mean).shape), (1, 3, 16, 12))


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""Makes tiny ESRGAN (RRDBNet) upscaler model files and reference runs of AUTOMATIC1111's pixel
upscalers (webui 1.10: modules/esrgan_model.py, upscaler_utils.py, upscaler.py, images.py,
modelloader.load_spandrel_model with spandrel 0.3.4, A1111 1.10's pin), for sdshell's RRDBNet,
TileGrid and PixelUpscaler:

    .venv-ref/bin/python Tests/Fixtures/generators/make_esrgan_fixtures.py

Writes
  Tests/DiffusionTests/Fixtures/upscalers/4x-TinyOld.pth       4x, the ORIGINAL ESRGAN key layout
        (4x-UltraSharp-style: a plain state dict "model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight",
        ..., "model.1.sub.N.weight" (the trunk conv, N = the block count), "model.3" / "model.6" (the
        two upsampling convs), "model.8" (HR conv), "model.10" (last conv)), float32, torch.save zip
  Tests/DiffusionTests/Fixtures/upscalers/4x-TinyBasicSR.pth   4x, BasicSR / Real-ESRGAN's layout
        ({"params_ema": {"conv_first", "body.N.rdb1.conv1", ..., "conv_body", "conv_up1", "conv_up2",
        "conv_hr", "conv_last"}}) with FLOAT16 weights (as many downloaded models are), torch.save zip
  Tests/DiffusionTests/Fixtures/upscalers/2x-TinyPlus.safetensors  2x Real-ESRGAN-style
        (RealESRGAN_x2plus: pixel_unshuffle by 2 first, so conv_first takes 12 channels; then the same
        two 2x upsamplings), BasicSR keys, float32, flat safetensors
  Tests/DiffusionTests/Fixtures/hostile-upscalers/evil.pth, evil_exec.pth  torch zips whose data.pkl
        calls posix.system / builtins.exec on load (made and checked as make_model_file_fixtures.py
        makes evil_*.pt; NEVER load them without a restricted unpickler: only disassembled here, and
        refused by torch.load(weights_only=True) and by spandrel's RestrictedUnpickle, A1111's loader)
  Tests/DiffusionTests/Fixtures/esrgan.json                    the reference runs (layout below)

Needs torch, safetensors, Pillow and spandrel 0.3.4 (pip install --no-deps spandrel==0.3.4 into
.venv-ref; its LaMa / RestoreFormer modules import torchvision, stubbed here as fixture_support
stubs it for k-diffusion). IMPORTS make_img2img_fixtures.py (importing it writes nothing) for
make_picture (the procedural pictures) and lanczos_9_5 (Pillow 9.5's LANCZOS pass order; A1111 1.10
pins Pillow 9.5), and make_model_file_fixtures.py for Evil / rewrite_data_pkl / verify_refused
(the hostile files). make_hires_pixel_fixtures.py imports from here: load_upscaler, resize_image,
the A1111 namespace (A1111), UPSCALER_DIR and the model names. Everything float32 on the CPU, one
thread; deterministic for the same library versions and CPU kind. If run_all.sh's Pillow 11
(.venv-ref/pillow-11) is there, the Pillow parts (split / combine, the LANCZOS and NEAREST resizes)
are also run with it, A1111's code as it is, in a subprocess and compared (printed, not written).

The tiny models
---------------
RRDBNet (ESRGAN, Wang et al. 2018): conv_first (3x3) -> nb RRDB blocks -> conv_body, added to
conv_first's output -> per 2x: nearest 2x upsample, 3x3 conv, LeakyReLU(0.2) -> conv_hr + LeakyReLU
(0.2) -> conv_last. RRDB = 3 residual dense blocks, then out * 0.2 + x; a residual dense block = 5
3x3 convs, conv_k taking cat(x, x1, ..., x_{k-1}) (nf + (k-1) gc channels), LeakyReLU(0.2) after
conv1-4, x5 * 0.2 + x. Every conv has a bias, zero padding 1. The growth channels gc are 32: spandrel
0.3.4 HARD-CODES gc = 32 (RRDBNet builds B.RRDB(gc=32) whatever the file holds), so A1111 1.10
cannot load an ESRGAN file with another gc (size mismatch) and neither do these: nf 4, gc 32,
nb 1 (4x-TinyOld, 2x-TinyPlus) or 2 (4x-TinyBasicSR). Weights: per conv, in a fixed order, from one
torch.Generator(seed): weight = randn * sqrt(2 / fan_in), bias = 0.05 * randn; then conv_last is
rescaled (weight * a, bias set) so that on the 12x10 picture the output has mean 0.5 and spread
0.25 per channel (a few per cent of the values fall outside 0..1 and are clamped).

What A1111 1.10 does, and this script too
------------------------------------------
Loading (esrgan_model.UpscalerESRGAN): models/ESRGAN files with the extensions ".pt" / ".pth" ONLY
(find_models(ext_filter=[".pt", ".pth"]): A1111 1.10 does not list a .safetensors ESRGAN file; spandrel
itself loads one, as here); the upscaler's name is the file's stem (modelloader.friendly_name:
"4x-TinyOld"), its listed scale 4 whatever the file. modelloader.load_spandrel_model(path,
device=None, expected_architecture="ESRGAN"): spandrel.ModelLoader().load_from_file: .pth through
torch.load(pickle_module=RestrictedUnpickle), .safetensors through safetensors; canonicalize_state_dict
unwraps "params_ema" (or "params", "state_dict", ...); the ESRGAN architecture converts BasicSR keys
to the old layout; float16 weights are copied into the float32 model (no --half for ESRGAN: the
model runs in float32). Scale: log2 from the number of "model.N" entries; a conv_first with 4x or
16x the output channels means pixel_unshuffle by 2 or 4 (the descriptor's scale is then 4 // 2 = 2).

upscaler_utils.upscale_pil_patch(model, img) -- the COLOUR ORDER: pil_image_to_torch_bgr flips the
picture to BGR (np.array(img)[:, :, ::-1]): the network gets channel 0 = BLUE, and its output's
channel 0 is taken as blue (torch_bgr_to_pil_image flips back). x = np.ascontiguousarray(chw) / 255
(float64), then .to(float32): equal to Float(v) / 255 in float32 for all 256 levels (checked). The
descriptor call (spandrel ImageModelDescriptor.__call__): for a pixel_unshuffle model the input is
first padded on the right / bottom to a multiple of 4 (SizeRequirements(multiple_of=4) for ANY
unshuffle factor, so also for 2x-TinyPlus) with torch reflect padding (at most size - 1, the rest
replicate), the model (which pads to its factor again, a no-op, unshuffles, runs) and the output
cropped to (h * scale, w * scale); the output is clamped to 0..1 there. Then
torch_bgr_to_pil_image: clamp_(0, 1), 255.0 * HWC (float32), .round() (numpy: half to even), uint8,
flip back to RGB. ROUNDING, not the truncation the VAE decode uses.

upscaler_utils.upscale_with_model(model, img, tile_size=opts.ESRGAN_tile (default 192),
tile_overlap=opts.ESRGAN_tile_overlap (default 8)): tile_size 0 -> upscale_pil_patch of the whole
picture. Else images.split_grid(img, tile, tile, overlap): cols = ceil((w - overlap) / (tile - overlap)),
rows likewise; dx = (w - tile) / (cols - 1) if cols > 1 else 0 (a Python double), x = int(col * dx),
and x = w - tile if x + tile >= w; y likewise; each tile = img.crop((x, y, x + tile, y + tile)):
ALWAYS tile x tile, so a picture smaller than a tile gives x = w - tile < 0 and the crop is padded
with BLACK on the left / top (the picture at the tile's bottom right); overlap 0 can still give
overlapping tiles (x = int(col * dx)). Each tile -> upscale_pil_patch; scale_factor = out.width //
tile.width; images.combine_grid of the grid with every position, size and the overlap times
scale_factor: mask_w = "L" picture (tile_h rows, overlap columns) of r * 255 / overlap for r =
0..overlap-1, float32 arithmetic, astype(uint8) (truncation; e.g. overlap 8: 0 31 63 95 127 159 191
223); mask_h the same ramp down the rows (overlap rows, image_w columns). Per row: a new black RGB row
picture (image_w x tile_h); the tile at x == 0 is pasted whole; any other tile: its first `overlap`
columns pasted at (x, 0) THROUGH mask_w, the rest plain at (x + overlap, 0). Then rows the same way
into the picture, the row at y == 0 whole, others: its first `overlap` rows through mask_h at (0, y),
the rest plain at (0, y + overlap). Pillow's paste through an "L" mask m, per channel (Paste.c
BLEND / DIV255): t = dst * (255 - m) + src * m + 128; out = ((t >> 8) + t) >> 8 (= round(v / 255));
mask and source share coordinates; everything clipped to the destination (negative x / y of
black-padded tiles paste their visible part only). Checked against a numpy restatement.

upscaler.Upscaler.upscale(img, scale, selected_model): dest_w = int((img.width * scale) // 8 * 8),
dest_h likewise (Python doubles); for i in 0, 1, 2: break if img.width >= dest_w and img.height >=
dest_h and (i > 0 or scale != 1); shape = img.size; img = do_upscale(img) (ESRGAN: the model once,
through upscale_with_model, whatever `scale` is; "Lanczos" / "Nearest": img.resize((int(img.width *
scale), int(img.height * scale)), LANCZOS / NEAREST)); break if the size did not change. Then if
img.size != (dest_w, dest_h): img.resize((dest_w, dest_h), LANCZOS). ("None" is not run through
this: images.resize_image's resize() returns im.resize((w, h), LANCZOS) at once for "None".)
images.resize_image(0, im, w, h, upscaler_name) (the hires fix's call): "None" (or no name): one
LANCZOS resize; else scale = max(w / im.width, h / im.height); if scale > 1.0: the upscaler's
upscale(im, scale, data_path); then if the size is not (w, h): LANCZOS to (w, h). LANCZOS
everywhere = Pillow 9.5's (make_img2img_fixtures.lanczos_9_5: the horizontal pass first).

File layout (pictures {"shape" [H, W, 3], "uint8_base64": the bytes in [y, x, RGB] order}; float32
tensors as fixture_support.enc32 writes them)
-----------------------------------------------------------------------------------------
{"generator", "versions" (torch, spandrel, pillow, numpy, safetensors), "cpu_capability",
 "a1111": {notes}, "defaults": {"ESRGAN_tile": 192, "ESRGAN_tile_overlap": 8},
 "models": [{"name" (A1111's upscaler name: the stem), "file" (repository-relative), "sha256",
   "layout" ("esrgan-old" | "basicsr"), "container" ("torch-zip" | "safetensors"), "wrapper"
   ("params_ema" | null), "dtype" ("F32" | "F16"), "scale", "num_feat", "num_blocks", "growth",
   "in_channels" (conv_first's: 3, or 12 for the unshuffle-by-2 model), "unshuffle" (1 | 2),
   "keys" (the file's tensor names in file order), "spandrel": {"architecture", "scale",
   "input_channels", "output_channels", "tags", "size_multiple_of"}}],
 "pictures": {name: picture},
 "masks": {overlap (scaled, as a string): [the truncated ramp values]},
 "cases": [CASE, ...],
 "hostile": [{"file", "malicious_global", "canary", "pickle_globals"}]}
CASE = {"name", "kind": "patch" (upscale_with_model with tile_size 0) | "tiled" (upscale_with_model)
  | "upscale" (Upscaler.upscale), "upscaler" (a model name, "Lanczos" or "Nearest"), "picture",
  "tile", "overlap" (tiled / ESRGAN upscale: the ESRGAN_tile settings; 0 0 for patch),
  "scale" (upscale only),
  "grid" (tiled: {"cols", "rows", "xs", "ys": the tile offsets split_grid gives, negative when
   black-padded}),
  "passes" (upscale: the sizes [w, h] after each do_upscale, then the final LANCZOS size if any),
  "dest" (upscale: [dest_w, dest_h]),
  "output": picture,
  "raw" (patch only: the network's float32 output [1, 3, H*s, W*s] before the clamp, channel 0 =
   BLUE as the network gives it), "raw_max_abs_float64_diff" (patch: max |float64 network - float32|),
   "float64_differing_bytes" (patch: output bytes that differ when the network runs in float64:
   the reference's own rounding spread, for tolerances), "clamped_fraction" (patch)}
"""

import base64
import io
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import time
import types
import zipfile
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_support as fs  # noqa: E402
from fixture_support import enc32  # noqa: E402
import make_img2img_fixtures as mif  # noqa: E402  (writes nothing on import)
import make_model_file_fixtures as mmf  # noqa: E402  (writes nothing on import)

OUT = os.path.join(fs.ROOT, "Tests", "DiffusionTests", "Fixtures", "esrgan.json")
UPSCALER_DIR = os.path.join(fs.ROOT, "Tests", "DiffusionTests", "Fixtures", "upscalers")
HOSTILE_DIR = os.path.join(fs.ROOT, "Tests", "DiffusionTests", "Fixtures", "hostile-upscalers")
GENERATOR = "Tests/Fixtures/generators/make_esrgan_fixtures.py"
MAX_BYTES = 1_000_000
SPANDREL_VERSION = "0.3.4"          # A1111 1.10's requirements_versions.txt
ESRGAN_TILE, ESRGAN_TILE_OVERLAP = 192, 8   # shared_options.py defaults
NUM_FEAT, GROWTH = 4, 32

# (A1111 name, file name, layout, scale, num_blocks, dtype, seed)
MODELS = [
    ("4x-TinyOld", "4x-TinyOld.pth", "esrgan-old", 4, 1, torch.float32, 5101),
    ("4x-TinyBasicSR", "4x-TinyBasicSR.pth", "basicsr", 4, 2, torch.float16, 5102),
    ("2x-TinyPlus", "2x-TinyPlus.safetensors", "basicsr", 2, 1, torch.float32, 5103),
]
# (name, w, h, make_img2img_fixtures.make_picture seed)
PICTURES = [("small_12x10", 12, 10, 3001), ("wide_20x14", 20, 14, 3002)]
CANARY_SYSTEM = "/tmp/sdshell_canary_upscaler_system"
CANARY_EXEC = "/tmp/sdshell_canary_upscaler_exec"


# --- spandrel without torchvision ---------------------------------------------------------------

def import_spandrel():
    """spandrel 0.3.4's LaMa and RestoreFormer modules import torchvision names at import time (unused
    by ESRGAN): stubbed, as fixture_support.import_k_diffusion stubs them."""
    for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
        sys.modules.setdefault(name, types.ModuleType(name))
    f = sys.modules["torchvision.transforms.functional"]
    for attr in ("InterpolationMode", "rotate", "normalize"):
        if not hasattr(f, attr):
            setattr(f, attr, None)
    import spandrel
    v = fs.version("spandrel")
    assert v == SPANDREL_VERSION, f"spandrel {v}: install spandrel=={SPANDREL_VERSION} (A1111 1.10's pin)"
    return spandrel


# --- the tiny models (BasicSR layout, to make the weights and cross-check spandrel) ----------------

class RDB(torch.nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        for k in range(1, 6):
            setattr(self, f"conv{k}", torch.nn.Conv2d(nf + (k - 1) * gc, gc if k < 5 else nf, 3, 1, 1))

    def forward(self, x):
        lrelu = torch.nn.functional.leaky_relu
        x1 = lrelu(self.conv1(x), 0.2)
        x2 = lrelu(self.conv2(torch.cat((x, x1), 1)), 0.2)
        x3 = lrelu(self.conv3(torch.cat((x, x1, x2), 1)), 0.2)
        x4 = lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)), 0.2)
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(torch.nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = RDB(nf, gc), RDB(nf, gc), RDB(nf, gc)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class TinyRRDBNet(torch.nn.Module):
    """BasicSR's RRDBNet (basicsr/archs/rrdbnet_arch.py) with its key names; scale 2 unshuffles by 2."""

    def __init__(self, scale, nf, nb, gc):
        super().__init__()
        self.scale = scale
        in_ch = 3 * 4 if scale == 2 else 3
        self.conv_first = torch.nn.Conv2d(in_ch, nf, 3, 1, 1)
        self.body = torch.nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.conv_body = torch.nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = torch.nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up2 = torch.nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = torch.nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = torch.nn.Conv2d(nf, 3, 3, 1, 1)

    def forward(self, x):
        lrelu = torch.nn.functional.leaky_relu
        up = torch.nn.functional.interpolate
        feat = torch.nn.functional.pixel_unshuffle(x, 2) if self.scale == 2 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = lrelu(self.conv_up1(up(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = lrelu(self.conv_up2(up(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(lrelu(self.conv_hr(feat), 0.2))


def make_network(scale, nb, seed, calibration):
    """The seeded tiny network (module doc), conv_last calibrated on `calibration` ([1, 3, H, W] in
    0..1, in the BGR order A1111 feeds)."""
    net = TinyRRDBNet(scale, NUM_FEAT, nb, GROWTH).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in net.named_modules():       # definition order
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.in_channels * 9
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.05)
        net.conv_last.bias.zero_()
        out = net(calibration)
        std = out.std(dim=(0, 2, 3))
        a = torch.tensor([round(0.25 / float(s), 4) for s in std])
        net.conv_last.weight.mul_(a[:, None, None, None])
        mean = net(calibration).mean(dim=(0, 2, 3))
        net.conv_last.bias.copy_(torch.tensor([round(0.5 - float(m), 4) for m in mean]))
    return net


def basicsr_state(net):
    return OrderedDict((k, v.detach().clone().contiguous()) for k, v in net.state_dict().items())


def basicsr_to_old(state, nb):
    """BasicSR names -> the original ESRGAN names (the inverse of spandrel's / A1111's maps)."""
    out = OrderedDict()
    for k, v in state.items():
        p = k.split(".")
        if p[0] == "conv_first":
            nk = f"model.0.{p[1]}"
        elif p[0] == "body":            # body.i.rdbK.convJ.weight
            nk = f"model.1.sub.{p[1]}.RDB{p[2][3:]}.{p[3]}.0.{p[4]}"
        elif p[0] == "conv_body":
            nk = f"model.1.sub.{nb}.{p[1]}"
        else:
            nk = {"conv_up1": "model.3", "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}[p[0]] + "." + p[1]
        out[nk] = v
    return out


def write_model(fname, layout, state, dtype):
    """Writes one model file (torch.save names the zip's top folder after the file's stem, so it is
    saved under its final name in a scratch folder, then moved into place). Returns the keys."""
    os.makedirs(UPSCALER_DIR, exist_ok=True)
    scratch = os.path.join(UPSCALER_DIR, ".scratch")
    os.makedirs(scratch, exist_ok=True)
    tmp = os.path.join(scratch, fname)
    state = OrderedDict((k, v.to(dtype)) for k, v in state.items())
    if fname.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file(dict(state), tmp)
        os.chmod(tmp, 0o644)
        with open(tmp, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            keys = list(json.loads(f.read(n)).keys())
        keys = [k for k in keys if k != "__metadata__"]
    else:
        obj = {"params_ema": state} if layout == "basicsr" else state
        torch.save(obj, tmp)
        keys = list(state.keys())
    os.replace(tmp, os.path.join(UPSCALER_DIR, fname))
    shutil.rmtree(scratch)
    return keys


# --- A1111 1.10's code (upscaler_utils.py, images.py, upscaler.py), run as it is -------------------

A1111_SOURCE = r'''
import math
from collections import namedtuple

import numpy as np
import torch
from PIL import Image

NEAREST = Image.Resampling.NEAREST


def get_param(model):
    """torch_utils.get_param: the first parameter (of a spandrel descriptor's model)."""
    if hasattr(model, "model") and isinstance(model.model, torch.nn.Module):
        model = model.model
    for param in model.parameters():
        return param


def pil_image_to_torch_bgr(img):
    img = np.array(img.convert("RGB"))
    img = img[:, :, ::-1]  # flip RGB to BGR
    img = np.transpose(img, (2, 0, 1))  # HWC to CHW
    img = np.ascontiguousarray(img) / 255  # Rescale to [0, 1]
    return torch.from_numpy(img)


def torch_bgr_to_pil_image(tensor):
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"{tensor.shape} does not describe a BCHW tensor")
        tensor = tensor.squeeze(0)
    assert tensor.ndim == 3, f"{tensor.shape} does not describe a CHW tensor"
    arr = tensor.float().cpu().clamp_(0, 1).numpy()  # clamp
    arr = 255.0 * np.moveaxis(arr, 0, 2)  # CHW to HWC, rescale
    arr = arr.round().astype(np.uint8)
    arr = arr[:, :, ::-1]  # flip BGR to RGB
    return Image.fromarray(arr, "RGB")


def upscale_pil_patch(model, img):
    param = get_param(model)
    with torch.inference_mode():
        tensor = pil_image_to_torch_bgr(img).unsqueeze(0)  # add batch dimension
        tensor = tensor.to(device=param.device, dtype=param.dtype)
        return torch_bgr_to_pil_image(model(tensor))


class Grid(namedtuple("_Grid", ["tiles", "tile_w", "tile_h", "image_w", "image_h", "overlap"])):
    @property
    def tile_count(self):
        return sum(len(row[2]) for row in self.tiles)


def split_grid(image, tile_w=512, tile_h=512, overlap=64):
    w, h = image.size

    non_overlap_width = tile_w - overlap
    non_overlap_height = tile_h - overlap

    cols = math.ceil((w - overlap) / non_overlap_width)
    rows = math.ceil((h - overlap) / non_overlap_height)

    dx = (w - tile_w) / (cols - 1) if cols > 1 else 0
    dy = (h - tile_h) / (rows - 1) if rows > 1 else 0

    grid = Grid([], tile_w, tile_h, w, h, overlap)
    for row in range(rows):
        row_images = []

        y = int(row * dy)

        if y + tile_h >= h:
            y = h - tile_h

        for col in range(cols):
            x = int(col * dx)

            if x + tile_w >= w:
                x = w - tile_w

            tile = image.crop((x, y, x + tile_w, y + tile_h))

            row_images.append([x, tile_w, tile])

        grid.tiles.append([y, tile_h, row_images])

    return grid


def combine_grid(grid):
    def make_mask_image(r):
        r = r * 255 / grid.overlap
        r = r.astype(np.uint8)
        return Image.fromarray(r, "L")

    mask_w = make_mask_image(np.arange(grid.overlap, dtype=np.float32).reshape((1, grid.overlap)).repeat(grid.tile_h, axis=0))
    mask_h = make_mask_image(np.arange(grid.overlap, dtype=np.float32).reshape((grid.overlap, 1)).repeat(grid.image_w, axis=1))

    combined_image = Image.new("RGB", (grid.image_w, grid.image_h))
    for y, h, row in grid.tiles:
        combined_row = Image.new("RGB", (grid.image_w, h))
        for x, w, tile in row:
            if x == 0:
                combined_row.paste(tile, (0, 0))
                continue

            combined_row.paste(tile.crop((0, 0, grid.overlap, h)), (x, 0), mask=mask_w)
            combined_row.paste(tile.crop((grid.overlap, 0, w, h)), (x + grid.overlap, 0))

        if y == 0:
            combined_image.paste(combined_row, (0, 0))
            continue

        combined_image.paste(combined_row.crop((0, 0, combined_row.width, grid.overlap)), (0, y), mask=mask_h)
        combined_image.paste(combined_row.crop((0, grid.overlap, combined_row.width, h)), (0, y + grid.overlap))

    return combined_image


def upscale_with_model(model, img, *, tile_size, tile_overlap=0):
    if tile_size <= 0:
        return upscale_pil_patch(model, img)

    grid = split_grid(img, tile_size, tile_size, tile_overlap)
    newtiles = []

    for y, h, row in grid.tiles:
        newrow = []
        for x, w, tile in row:
            output = upscale_pil_patch(model, tile)
            scale_factor = output.width // tile.width
            newrow.append([x * scale_factor, w * scale_factor, output])
        newtiles.append([y * scale_factor, h * scale_factor, newrow])

    newgrid = Grid(
        newtiles,
        tile_w=grid.tile_w * scale_factor,
        tile_h=grid.tile_h * scale_factor,
        image_w=grid.image_w * scale_factor,
        image_h=grid.image_h * scale_factor,
        overlap=grid.overlap * scale_factor,
    )
    return combine_grid(newgrid)


def upscale(img, scale, do_upscale, passes=None):
    """Upscaler.upscale with the upscaler's do_upscale(img, scale) passed in; `passes` collects the
    sizes (not A1111's)."""
    dest_w = int((img.width * scale) // 8 * 8)
    dest_h = int((img.height * scale) // 8 * 8)

    for i in range(3):
        if img.width >= dest_w and img.height >= dest_h and (i > 0 or scale != 1):
            break

        shape = (img.width, img.height)

        img = do_upscale(img, scale)
        if passes is not None:
            passes.append([img.width, img.height])

        if shape == (img.width, img.height):
            break

    if img.width != dest_w or img.height != dest_h:
        img = LANCZOS_RESIZE(img, int(dest_w), int(dest_h))
        if passes is not None:
            passes.append([img.width, img.height])

    return img


def lanczos_do_upscale(img, scale):
    """UpscalerLanczos.do_upscale."""
    return LANCZOS_RESIZE(img, int(img.width * scale), int(img.height * scale))


def nearest_do_upscale(img, scale):
    """UpscalerNearest.do_upscale."""
    return img.resize((int(img.width * scale), int(img.height * scale)), resample=NEAREST)


def resize_image_0(im, width, height, upscaler_name, upscalers, passes=None):
    """images.resize_image(0, im, width, height, upscaler_name=...) (mode 0: resize(im, width, height));
    upscalers: {name: do_upscale(img, scale)} (shared.sd_upscalers' scalers)."""
    if im.mode == "RGBA":
        im = im.convert("RGB")

    def resize(im, w, h):
        if upscaler_name is None or upscaler_name == "None" or im.mode == "L":
            return LANCZOS_RESIZE(im, w, h)

        scale = max(w / im.width, h / im.height)

        if scale > 1.0:
            im = upscale(im, scale, upscalers[upscaler_name], passes)

        if im.width != w or im.height != h:
            im = LANCZOS_RESIZE(im, w, h)
            if passes is not None:
                passes.append([im.width, im.height])

        return im

    return resize(im, width, height)
'''


def a1111_namespace(lanczos):
    """A1111_SOURCE run with its LANCZOS resize (im.resize((w, h), LANCZOS)) given: Pillow 9.5's order."""
    ns = {"LANCZOS_RESIZE": lanczos}
    exec(A1111_SOURCE, ns)
    return ns


A1111 = a1111_namespace(mif.lanczos_9_5)


def load_upscaler(name):
    """modelloader.load_spandrel_model(path, device=None, expected_architecture="ESRGAN") of the model
    file named `name` (A1111's name: the stem): the spandrel descriptor, eval, float32."""
    spandrel = import_spandrel()
    fname = [f for n, f, *_ in MODELS if n == name][0]
    d = spandrel.ModelLoader(device=None).load_from_file(os.path.join(UPSCALER_DIR, fname))
    assert d.architecture.id == "ESRGAN", d.architecture.id
    d.model.eval()
    assert all(p.dtype == torch.float32 for p in d.model.parameters())
    return d


def esrgan_do_upscale(descriptor, tile=ESRGAN_TILE, overlap=ESRGAN_TILE_OVERLAP):
    """UpscalerESRGAN.do_upscale: the model once through upscale_with_model (the scale is not used)."""
    return lambda img, scale: A1111["upscale_with_model"](descriptor, img, tile_size=tile, tile_overlap=overlap)


def resize_image(im, width, height, upscaler_name, passes=None, tile=ESRGAN_TILE, overlap=ESRGAN_TILE_OVERLAP):
    """images.resize_image(0, im, width, height, upscaler_name) with A1111's upscalers: "None",
    "Lanczos", "Nearest" and the model files here (by name)."""
    ups = {"Lanczos": A1111["lanczos_do_upscale"], "Nearest": A1111["nearest_do_upscale"]}
    if upscaler_name not in ("None", "Lanczos", "Nearest"):
        ups[upscaler_name] = esrgan_do_upscale(load_upscaler(upscaler_name), tile, overlap)
    return A1111["resize_image_0"](im, width, height, upscaler_name, ups, passes)


# --- independent restatements (checks) -------------------------------------------------------------

def paste_np(dst, src, x, y, mask=None):
    """Pillow's paste(src, (x, y), mask) on [H, W, 3] uint8 arrays, clipped; through an "L" mask m:
    t = dst * (255 - m) + src * m + 128, ((t >> 8) + t) >> 8 (Paste.c)."""
    H, W = dst.shape[:2]
    h, w = src.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    s = src[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.int64)
    if mask is None:
        dst[y0:y1, x0:x1] = s
        return
    m = mask[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.int64)[..., None]
    t = dst[y0:y1, x0:x1].astype(np.int64) * (255 - m) + s * m + 128
    dst[y0:y1, x0:x1] = ((t >> 8) + t) >> 8


def ramp(overlap):
    """combine_grid's mask values: (r * 255 / overlap) in float32, truncated."""
    r = np.arange(overlap, dtype=np.float32) * np.float32(255) / np.float32(overlap)
    return r.astype(np.uint8)


def combine_np(tiles, tile_h, image_w, image_h, overlap):
    """combine_grid restated on arrays: tiles = [[y, h, [[x, w, [h, w, 3] array], ...]], ...]."""
    r = ramp(overlap)
    mask_w = np.repeat(r[None, :], tile_h, axis=0)
    mask_h = np.repeat(r[:, None], image_w, axis=1)
    out = np.zeros((image_h, image_w, 3), np.uint8)
    for y, h, row in tiles:
        crow = np.zeros((h, image_w, 3), np.uint8)
        for x, w, t in row:
            if x == 0:
                paste_np(crow, t, 0, 0)
                continue
            paste_np(crow, t[:, :overlap], x, 0, mask_w)
            paste_np(crow, t[:, overlap:w], x + overlap, 0)
        if y == 0:
            paste_np(out, crow, 0, 0)
            continue
        paste_np(out, crow[:overlap], 0, y, mask_h)
        paste_np(out, crow[overlap:h], 0, y + overlap)
    return out


def crop_np(arr, x, y, w, h):
    """Pillow's crop: black outside the picture."""
    out = np.zeros((h, w, 3), np.uint8)
    paste_np(out, arr, -x, -y)
    return out


def network_np(descriptor, arr, double=False):
    """The descriptor on a picture, restated: BGR, Float(v) / 255, the descriptor call (or, double: its
    padding and model in float64), clamp, * 255, round (half to even), RGB. Returns (the 8-bit
    output, the clamped raw output)."""
    bgr = np.ascontiguousarray(arr[:, :, ::-1].transpose(2, 0, 1))
    x = torch.from_numpy(bgr.astype(np.float32) / np.float32(255))[None]
    with torch.no_grad():
        if double:
            descriptor.model.double()
            try:
                raw = spandrel_call_raw(descriptor, x.double()).clamp(0, 1)
            finally:
                descriptor.model.float()
            y = raw[0].numpy().transpose(1, 2, 0) * 255.0
        else:
            raw = descriptor(x)
            y = raw[0].numpy().transpose(1, 2, 0) * np.float32(255)
    return np.round(y).astype(np.uint8)[:, :, ::-1], raw


def spandrel_call_raw(d, x):
    """ImageModelDescriptor.__call__ restated without its clamp: reflect (at most side - 1) then
    replicate padding on the right / bottom to the size multiple, the model, the crop."""
    _, _, h, w = x.shape
    mult = d.size_requirements.multiple_of
    pw, ph = (-w) % mult, (-h) % mult
    if pw or ph:
        rw, rh = min(pw, w - 1), min(ph, h - 1)
        x = torch.nn.functional.pad(x, (0, rw, 0, rh), "reflect")
        x = torch.nn.functional.pad(x, (0, pw - rw, 0, ph - rh), "replicate")
    return d.model(x)[..., :h * d.scale, :w * d.scale]


# --- cases ---------------------------------------------------------------------------------------

def pictures_json(arr):
    return {"shape": list(arr.shape), "uint8_base64": base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode()}


def grid_layout(w, h, tile, overlap):
    g = A1111["split_grid"](Image.new("RGB", (w, h)), tile, tile, overlap)
    ys = [y for y, _, _ in g.tiles]
    xs = [x for x, _, _ in g.tiles[0][2]]
    return {"cols": len(xs), "rows": len(ys), "xs": xs, "ys": ys}


def case_specs():
    """(name, kind, upscaler, picture, tile, overlap, scale)."""
    s, wide = "small_12x10", "wide_20x14"
    return [
        ("4x-TinyOld / patch / 12x10", "patch", "4x-TinyOld", s, 0, 0, None),
        ("4x-TinyBasicSR / patch / 12x10", "patch", "4x-TinyBasicSR", s, 0, 0, None),
        ("2x-TinyPlus / patch / 12x10 (reflect-padded to 12x12)", "patch", "2x-TinyPlus", s, 0, 0, None),
        ("2x-TinyPlus / patch / 20x14 (reflect-padded to 20x16)", "patch", "2x-TinyPlus", wide, 0, 0, None),
        ("4x-TinyOld / tile 8 overlap 2 / 20x14", "tiled", "4x-TinyOld", wide, 8, 2, None),
        ("4x-TinyOld / tile 6 overlap 0 / 20x14 (overlapping tiles, no blend)", "tiled", "4x-TinyOld", wide, 6, 0, None),
        ("4x-TinyOld / tile 16 overlap 4 / 12x10 (one black-padded tile)", "tiled", "4x-TinyOld", s, 16, 4, None),
        ("4x-TinyBasicSR / tile 12 overlap 4 / 20x14", "tiled", "4x-TinyBasicSR", wide, 12, 4, None),
        ("2x-TinyPlus / tile 6 overlap 2 / 20x14 (each tile reflect-padded to 8x8)", "tiled", "2x-TinyPlus", wide, 6, 2, None),
        ("2x-TinyPlus / upscale 3.0 / 12x10 (two passes, LANCZOS to 32x24; default tiles)", "upscale", "2x-TinyPlus", s,
         ESRGAN_TILE, ESRGAN_TILE_OVERLAP, 3.0),
        ("4x-TinyOld / upscale 2.5 / 12x10 (one pass, LANCZOS to 24x24; default tiles)", "upscale", "4x-TinyOld", s,
         ESRGAN_TILE, ESRGAN_TILE_OVERLAP, 2.5),
        ("4x-TinyOld / upscale 2.0 / 20x14 (tile 8 overlap 2)", "upscale", "4x-TinyOld", wide, 8, 2, 2.0),
        ("Lanczos / upscale 3.0 / 12x10", "upscale", "Lanczos", s, 0, 0, 3.0),
        ("Nearest / upscale 3.0 / 12x10", "upscale", "Nearest", s, 0, 0, 3.0),
        ("Nearest / upscale 1.75 / 20x14", "upscale", "Nearest", wide, 0, 0, 1.75),
    ]


def run_case(spec, pics, models):
    name, kind, up, pic, tile, overlap, scale = spec
    arr = pics[pic]
    im = Image.fromarray(arr)
    rec = {"name": name, "kind": kind, "upscaler": up, "picture": pic, "tile": tile, "overlap": overlap}
    if kind == "patch":
        d = models[up]
        out = np.array(A1111["upscale_with_model"](d, im, tile_size=0, tile_overlap=0))
        want, raw = network_np(d, arr)
        assert np.array_equal(out, want), name
        ref64, raw64 = network_np(d, arr, double=True)
        # the unclamped output, for the record (the descriptor clamps in place: rerun the model)
        bgr = np.ascontiguousarray(arr[:, :, ::-1].transpose(2, 0, 1))
        x = torch.from_numpy(bgr.astype(np.float32) / np.float32(255))[None]
        with torch.no_grad():
            unclamped = spandrel_call_raw(d, x)
        assert torch.equal(unclamped.clamp(0, 1), raw)
        rec.update(output=pictures_json(out), raw=enc32(unclamped),
                   raw_max_abs_float64_diff=float((raw64 - raw.double()).abs().max()),
                   float64_differing_bytes=int((ref64 != out).sum()),
                   clamped_fraction=round(float(((unclamped < 0) | (unclamped > 1)).float().mean()), 4))
        return rec, out
    if kind == "tiled":
        d = models[up]
        out = np.array(A1111["upscale_with_model"](d, im, tile_size=tile, tile_overlap=overlap))
        lay = grid_layout(arr.shape[1], arr.shape[0], tile, overlap)
        # restated: crops (black outside), the network per tile, combine_np
        s = d.scale
        tiles = []
        for y in lay["ys"]:
            row = [[x * s, tile * s, network_np(d, crop_np(arr, x, y, tile, tile))[0]] for x in lay["xs"]]
            tiles.append([y * s, tile * s, row])
        want = combine_np(tiles, tile * s, arr.shape[1] * s, arr.shape[0] * s, overlap * s)
        assert np.array_equal(out, want), name
        rec.update(grid=lay, output=pictures_json(out))
        return rec, out
    passes = []
    if up in ("Lanczos", "Nearest"):
        do = A1111[f"{up.lower()}_do_upscale"]
    else:
        do = esrgan_do_upscale(models[up], tile, overlap)
    out = np.array(A1111["upscale"](im, scale, do, passes))
    dest = [int((arr.shape[1] * scale) // 8 * 8), int((arr.shape[0] * scale) // 8 * 8)]
    assert list(out.shape[:2]) == dest[::-1], name
    rec.update(scale=scale, passes=passes, dest=dest, output=pictures_json(out))
    return rec, out


# --- hostile files ---------------------------------------------------------------------------------

def write_hostile():
    """evil.pth (posix.system) and evil_exec.pth (builtins.exec): a clean BasicSR-style torch zip built
    in memory whose data.pkl is replaced by a pickle calling the function (make_model_file_fixtures'
    Evil / rewrite_data_pkl); checked: the pickle disassembles, torch.load(weights_only=True) and
    spandrel's loader refuse them, and no canary appears."""
    os.makedirs(HOSTILE_DIR, exist_ok=True)
    clean = {"params_ema": {"conv_first.weight": torch.zeros(4, 3, 3, 3)}}
    buf = io.BytesIO()
    torch.save(clean, buf)
    cases = [("evil.pth", os.system, (f"touch {CANARY_SYSTEM}",), "posix.system", CANARY_SYSTEM, True),
             ("evil_exec.pth", exec, (f"import os; os.system('touch {CANARY_EXEC}')",), "builtins.exec",
              CANARY_EXEC, False)]
    spandrel = import_spandrel()
    out = []
    for fname, fn, args, glob, canary, fix_imports in cases:
        pkl = pickle.dumps(mmf.Evil(fn, args), protocol=2, fix_imports=fix_imports)
        path = os.path.join(HOSTILE_DIR, fname)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(mmf.rewrite_data_pkl(buf.getvalue(), pkl))
        os.replace(tmp, path)
        existed = os.path.exists(canary)
        globs = mmf.verify_refused(path, glob, False)
        try:
            spandrel.ModelLoader().load_from_file(path)
        except Exception as e:
            refused = type(e).__name__
        else:
            raise AssertionError(f"spandrel loaded {path}")
        assert existed or not os.path.exists(canary), f"{canary} appeared!"
        print(f"  hostile {fname}: {glob}, refused by torch weights_only and spandrel ({refused})", flush=True)
        out.append({"file": fs.rel(path), "malicious_global": glob, "canary": canary, "pickle_globals": globs})
    return out


# --- Pillow 11 cross-check ------------------------------------------------------------------------

def check_pillow_11(records):
    """The Pillow parts with Pillow 11 (its resampling is 9.5's), A1111's code as it is (one
    im.resize((w, h), LANCZOS) call): every case again in a subprocess from the same model files."""
    if not os.path.isdir(os.path.join(mif.PILLOW_11, "PIL")):
        print("  check: Pillow 11 not at .venv-ref/pillow-11, version cross-check skipped", flush=True)
        return
    script = r'''
import base64, json, os, sys
sys.path.insert(0, sys.argv[1])
import PIL
from PIL import Image
import numpy as np
import make_esrgan_fixtures as mef
A = mef.a1111_namespace(lambda im, w, h: im.resize((w, h), resample=Image.Resampling.LANCZOS))
mef.A1111.clear(); mef.A1111.update(A)
pics = {n: mef.mif.make_picture(w, h, s) for n, w, h, s in mef.PICTURES}
models = {n: mef.load_upscaler(n) for n, *_ in mef.MODELS}
out = []
for spec in mef.case_specs():
    name, kind, up, pic, tile, overlap, scale = spec
    im = Image.fromarray(pics[pic])
    if kind == "upscale":
        do = A[f"{up.lower()}_do_upscale"] if up in ("Lanczos", "Nearest") else mef.esrgan_do_upscale(models[up], tile, overlap)
        res = A["upscale"](im, scale, do)
    else:
        res = A["upscale_with_model"](models[up], im, tile_size=tile, tile_overlap=overlap)
    out.append(base64.b64encode(np.array(res).tobytes()).decode())
print(json.dumps({"version": PIL.__version__, "outputs": out}))
'''
    env = dict(os.environ, PYTHONPATH=mif.PILLOW_11)
    res = subprocess.run([sys.executable, "-c", script, os.path.dirname(os.path.abspath(__file__))],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["version"].startswith("11."), got["version"]
    for rec, b in zip(records, got["outputs"]):
        assert base64.b64decode(b) == base64.b64decode(rec["output"]["uint8_base64"]), rec["name"]
    print(f"  check: A1111's code as it is under Pillow {got['version']} == these {len(records)} cases", flush=True)


# --- main ------------------------------------------------------------------------------------------

def main():
    t0 = time.time()
    torch.set_num_threads(1)
    spandrel = import_spandrel()
    # A1111's input scaling: float64 v / 255 then float32 == Float(v) / 255 for every level
    v = np.arange(256)
    assert np.array_equal((v / 255).astype(np.float32), v.astype(np.float32) / np.float32(255))
    pics = {n: mif.make_picture(w, h, s) for n, w, h, s in PICTURES}
    calib = torch.from_numpy(np.ascontiguousarray(pics["small_12x10"][:, :, ::-1].transpose(2, 0, 1))
                             .astype(np.float32) / np.float32(255))[None]

    models_json, descriptors = [], {}
    for name, fname, layout, scale, nb, dtype, seed in MODELS:
        net = make_network(scale, nb, seed, calib)
        state = basicsr_state(net)
        if layout == "esrgan-old":
            state = basicsr_to_old(state, nb)
        keys = write_model(fname, layout, state, dtype)
        path = os.path.join(UPSCALER_DIR, fname)
        d = load_upscaler(name)
        assert d.scale == scale and d.input_channels == 3 and d.output_channels == 3, (name, d.scale)
        assert d.size_requirements.multiple_of == (4 if scale == 2 else 1)
        # spandrel's network == the BasicSR module with the file's (dtype-rounded) weights
        net_file = TinyRRDBNet(scale, NUM_FEAT, nb, GROWTH).eval()
        net_file.load_state_dict({k: v.to(dtype).float() for k, v in basicsr_state(net).items()})
        with torch.no_grad():
            a, b = d.model(calib), net_file(calib)
        assert torch.allclose(a, b, rtol=0, atol=1e-5), (name, (a - b).abs().max())
        print(f"  {name}: spandrel {d.architecture.id} scale {d.scale} tags {d.tags}; vs BasicSR module "
              f"max diff {(a - b).abs().max().item():.1e} (bit-equal: {torch.equal(a, b)})", flush=True)
        descriptors[name] = d
        models_json.append({
            "name": name, "file": fs.rel(path), "sha256": fs.sha256_file(path), "layout": layout,
            "container": "safetensors" if fname.endswith(".safetensors") else "torch-zip",
            "wrapper": "params_ema" if layout == "basicsr" and not fname.endswith(".safetensors") else None,
            "dtype": {torch.float32: "F32", torch.float16: "F16"}[dtype], "scale": scale, "num_feat": NUM_FEAT,
            "num_blocks": nb, "growth": GROWTH, "in_channels": 12 if scale == 2 else 3,
            "unshuffle": 2 if scale == 2 else 1, "keys": keys,
            "spandrel": {"architecture": d.architecture.id, "scale": d.scale, "input_channels": d.input_channels,
                         "output_channels": d.output_channels, "tags": list(d.tags),
                         "size_multiple_of": d.size_requirements.multiple_of},
        })

    cases, outs = [], {}
    for spec in case_specs():
        t1 = time.time()
        rec, out = run_case(spec, pics, descriptors)
        rec2, out2 = run_case(spec, pics, descriptors)
        assert np.array_equal(out, out2), "not deterministic"
        cases.append(rec)
        outs[spec[0]] = out
        extra = ""
        if rec["kind"] == "patch":
            extra = (f" f64 bytes differing {rec['float64_differing_bytes']}, clamped {rec['clamped_fraction']}, "
                     f"raw f64 diff {rec['raw_max_abs_float64_diff']:.1e}")
        print(f"  {rec['name']:80s} -> {out.shape[1]}x{out.shape[0]}{extra} {rec.get('passes', '')} "
              f"({time.time() - t1:.1f} s)", flush=True)

    # the colour order matters: feeding RGB gives another picture
    d = descriptors["4x-TinyOld"]
    with torch.no_grad():
        rgb_in = torch.from_numpy(pics["small_12x10"].transpose(2, 0, 1).astype(np.float32) / np.float32(255))[None]
        rgb_out = np.round(d(rgb_in)[0].numpy().transpose(1, 2, 0) * np.float32(255)).astype(np.uint8)
    assert not np.array_equal(rgb_out, outs["4x-TinyOld / patch / 12x10"])
    # an untiled and a tiled run differ (the seams), and the black-padded tile differs from the patch
    assert not np.array_equal(outs["4x-TinyOld / tile 8 overlap 2 / 20x14"][:40, :48], outs["4x-TinyOld / patch / 12x10"])
    assert not np.array_equal(outs["4x-TinyOld / tile 16 overlap 4 / 12x10 (one black-padded tile)"],
                              outs["4x-TinyOld / patch / 12x10"])
    masks = {str(o): ramp(o).tolist() for o in sorted({c["overlap"] * (4 if "4x" in c["upscaler"] else 2)
                                                       for c in cases if c["kind"] == "tiled"} | {16, 32})}
    hostile = write_hostile()
    check_pillow_11(cases)

    doc = {
        "generator": GENERATOR,
        "versions": {"torch": torch.__version__, "spandrel": fs.version("spandrel"), "pillow": fs.version("pillow"),
                     "numpy": np.__version__, "safetensors": fs.version("safetensors")},
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "a1111": {
            "loading": "esrgan_model.UpscalerESRGAN lists models/ESRGAN *.pt / *.pth only (not .safetensors); the "
                       "name is the file's stem; modelloader.load_spandrel_model with spandrel 0.3.4: RestrictedUnpickle "
                       "torch.load, params_ema / params unwrapped, BasicSR keys mapped to the old layout, float16 "
                       "weights into a float32 model; gc fixed at 32; 12 / 48 input channels = pixel_unshuffle 2 / 4",
            "colour_order": "upscale_pil_patch feeds BGR (pil_image_to_torch_bgr: np.array(img)[:, :, ::-1]) and reads "
                            "the output as BGR (torch_bgr_to_pil_image flips back): network channel 0 = blue",
            "input": "np.ascontiguousarray(chw) / 255 (float64) -> float32: Float(v) / 255 exactly",
            "output": "clamp 0..1 (the descriptor, then clamp_), 255.0 * HWC float32, numpy round (half to even), "
                      "uint8: ROUNDED, unlike the VAE decode's truncation",
            "unshuffle_padding": "spandrel ImageModelDescriptor.__call__: pixel_unshuffle models need sides that are "
                                 "multiples of 4 (for factor 2 too): reflect padding on the right / bottom (at most "
                                 "side - 1, then replicate), the output cropped to h * scale, w * scale",
            "tiles": "upscale_with_model(tile_size=ESRGAN_tile 192, tile_overlap=ESRGAN_tile_overlap 8): split_grid "
                     "(cols = ceil((w - overlap) / (tile - overlap)), dx = (w - tile) / (cols - 1), x = int(col * dx), "
                     "clamped to w - tile, which is NEGATIVE when the picture is smaller than a tile: Pillow's crop pads "
                     "black on the left / top), every tile tile x tile; combine_grid with everything times the "
                     "model's scale: masks r * 255 / overlap (float32, truncated), the first tile of a row / first row "
                     "pasted whole, later ones: their first `overlap` columns / rows through the mask, the rest plain",
            "paste_with_mask": "Pillow Paste.c: t = dst * (255 - m) + src * m + 128; out = ((t >> 8) + t) >> 8; mask and "
                               "source share coordinates; clipped to the destination",
            "upscale_loop": "Upscaler.upscale: dest = int((size * scale) // 8 * 8) per side; up to 3 do_upscale calls "
                            "until both sides reach dest (the first call always when scale != 1) or the size stops "
                            "changing; then LANCZOS to dest if it differs. ESRGAN do_upscale = the model once; Lanczos / "
                            "Nearest do_upscale = resize to int(side * scale) with that filter",
            "resize_image": "resize_image(0, im, w, h, upscaler_name): 'None' -> LANCZOS to (w, h); else scale = "
                            "max(w / im.width, h / im.height), if > 1 the upscaler's upscale(im, scale), then LANCZOS to "
                            "(w, h) if the size differs",
            "lanczos": "every LANCZOS resize as Pillow 9.5 (A1111 1.10's pin) computes it: horizontal pass first "
                       "(make_img2img_fixtures.lanczos_9_5)",
        },
        "defaults": {"ESRGAN_tile": ESRGAN_TILE, "ESRGAN_tile_overlap": ESRGAN_TILE_OVERLAP},
        "models": models_json,
        "pictures": {n: pictures_json(a) for n, a in pics.items()},
        "masks": masks,
        "cases": cases,
        "hostile": hostile,
    }
    size = fs.write_json_fixture(OUT, doc, MAX_BYTES)
    files = [os.path.join(UPSCALER_DIR, f) for _, f, *_ in MODELS]
    print(f"wrote {fs.rel(OUT)} ({size} bytes), {len(cases)} cases; models "
          + ", ".join(f"{os.path.basename(f)} {os.path.getsize(f)} B" for f in files)
          + f"; {time.time() - t0:.0f} s")


if __name__ == "__main__":
    sys.exit(main())

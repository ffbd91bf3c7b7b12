#!/usr/bin/env python3
"""Makes Tests/PromptingTests/Fixtures/png-embeddings/: textual-inversion embeddings
carried inside PNG files the way A1111 (stable-diffusion-webui 1.x) writes and reads
them, and expected.json, what A1111's EmbeddingDatabase.load_from_file makes of each
file plus a description of the encodings precise enough to write a reader from.

Rerun (needs numpy and Pillow in .venv-ref; torch only for the seeded vectors; no network):
    .venv-ref/bin/python Tests/Fixtures/generators/make_png_embedding_fixtures.py
The reading side (read_pixels, a1111_outcome, the LCG masks) is in fixture_support.py,
shared with make_pipeline_fixtures.py.
Optional cross-check against A1111's own code (not part of this repository, AGPL):
put modules/textual_inversion/image_embedding.py of AUTOMATIC1111/stable-diffusion-webui
anywhere OUTSIDE the repository and run
    .venv-ref/bin/python Tests/Fixtures/generators/make_png_embedding_fixtures.py --a1111 /tmp/x/image_embedding.py
(or set A1111_IMAGE_EMBEDDING). The module is imported with a stub `modules.shared`;
the script then checks that A1111's insert_image_data_embed gives the same pixels as
this script for the same input, that A1111's extract_image_data_embed and
embedding_from_b64 read back every file, and that A1111's load_from_file image branch
(restated in check_with_a1111) names and fills each embedding as expected.json says.

Deterministic: the same numpy / Pillow / zlib / torch versions give byte-identical
files (the script builds everything twice and compares before writing). It rewrites
the seven files below and deletes nothing.

The files (vectors = seeded torch.randn * 0.02, float32, width 32)
-------------------------------------------------------------------
  pngtext.png    64x64 RGB gradient + tEXt "sd-ti-embedding" (A1111 dict, name
                 "pngtext", 2 vectors, step 7); no data in the pixels
  pngpixels.png  the data ONLY in the pixels (A1111's insert_image_data_embed layout:
                 low-nibble block | black column | 64x64 picture | black column |
                 high-nibble block); name "pngpixels", 1 vector, step 12; no text chunk
  both.png       both forms with the same data, as A1111's trainer writes its
                 image_embeddings/<name>-<step>.png previews: name "pngboth" (the data's
                 name, not the file stem), 3 vectors, step 20. A1111 reads the text chunk.
  plain.png      a picture with an ordinary "parameters" tEXt chunk and no embedding:
                 ignored silently (no sd-ti-embedding chunk; the pixel reader finds no
                 pair of black columns and returns None)
  x.preview.png  both forms (name "previewembed") but the stem ends in ".preview":
                 A1111 returns before opening the file
  framed.png     pixel data only (name "pngframed", 2 vectors, step 5), the encoded image
                 pasted into a black frame 2 / 3 / 5 / 1 px wide (left / top / right /
                 bottom): read only if crop_black's box is applied (columns from the
                 column mask, rows from the row mask)
  expected.json  see "files" and "pixel_encoding" in it

The encodings are written here from their rules (see PIXEL_ENCODING below), not
copied from A1111.
"""
import argparse
import base64
import hashlib
import importlib.util
import io
import json
import os
import sys
import types
import zlib

import numpy as np
import torch
from PIL import Image, ImageDraw, PngImagePlugin

from fixture_support import (ROOT, LCG_A, LCG_C, LCG_M, LCG_MOD, LCG_SEED, TEXT_KEY, a1111_outcome,  # noqa: E402
                             lcg_masks, read_pixels)

OUT_DIR = os.path.join(ROOT, "Tests", "PromptingTests", "Fixtures", "png-embeddings")
GENERATOR = "Tests/Fixtures/generators/make_png_embedding_fixtures.py"
WIDTH = 32          # token-embedding width of the tiny test model
SCALE = 0.02        # like trained embeddings
CHECKPOINT = "a1b2c3d4e5"
CHECKPOINT_NAME = "tiny-sd"

# TEXT_KEY ("sd-ti-embedding") and the LCG of the pixel encoding (LCG_A, LCG_C, LCG_M, LCG_SEED,
# LCG_MOD; masks from lcg_masks): fixture_support.
CHANNELS = 3
GAP = 1             # black columns on each side of the picture
FRAME = (2, 3, 5, 1)  # framed.png: black margins left, top, right, bottom


# --- data ----------------------------------------------------------------------

def vectors(seed, n):
    g = torch.Generator("cpu").manual_seed(seed)
    return torch.randn((n, WIDTH), generator=g, dtype=torch.float32) * SCALE


def a1111_dict(name, vec, step):
    """textual_inversion.Embedding.save's dict (key order matters: it is the JSON order)."""
    return {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": vec},
        "name": name,
        "step": step,
        "sd_checkpoint": CHECKPOINT,
        "sd_checkpoint_name": CHECKPOINT_NAME,
    }


def plain_json(obj):
    """The dict with every tensor replaced by {"TORCHTENSOR": nested lists of Python floats}."""
    if isinstance(obj, torch.Tensor):
        return {"TORCHTENSOR": obj.detach().cpu().tolist()}
    if isinstance(obj, dict):
        return {k: plain_json(v) for k, v in obj.items()}
    return obj


def json_text(data):
    # json.dumps defaults: separators ", " and ": ", ensure_ascii, floats as repr().
    return json.dumps(plain_json(data))


def text_chunk_value(data):
    return base64.b64encode(json_text(data).encode("utf-8"))


# --- pixel encoding ------------------------------------------------------------

def padded_length(n, h):
    """Compressed length n -> number of bytes laid out: first up to the next multiple of
    h, then up to the next multiple of 3*h; each step adds a FULL h (3*h) when already a
    multiple (A1111's rounding)."""
    size = n + (h - n % h)
    return size + (CHANNELS * h - size % (CHANNELS * h))


def cyclic(data, size):
    reps = -(-size // len(data))
    return (data * reps)[:size]


def shade_sequence(first_vector):
    a = np.abs(np.asarray(first_vector[:1024], dtype=np.float64))
    return (a / a.max() * 255).astype(np.uint8)           # truncation toward zero


def dot_pattern(w, h, shades):
    """Upper-nibble decoration: gray discs on a black w x h canvas, & 0xF0."""
    canvas = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(canvas)
    i = 0
    for x in range(-6, w, 8):
        for row, y in enumerate(range(-6, h, 8)):
            dx = 4 if row % 2 == 0 else 0
            s = int(shades[i % len(shades)])
            i += 1
            draw.ellipse((x + dx, y, x + dx + 6, y + 6), fill=(s, s, s))
    return np.asarray(canvas, dtype=np.uint8) & 0xF0


def embed_in_pixels(picture, data):
    """Returns (RGB image, layout facts)."""
    w_pic, h = picture.size
    compressed = zlib.compress(json_text(data).encode("utf-8"), 9)
    size = padded_length(len(compressed), h)
    laid = np.frombuffer(cyclic(compressed, size), np.uint8)
    bw = size // (CHANNELS * h)
    masks = lcg_masks(size).reshape(h, bw, CHANNELS)
    shades = shade_sequence(plain_json(data)["string_to_param"]["*"]["TORCHTENSOR"][0])
    low = (laid & 0x0F).reshape(h, bw, CHANNELS) ^ masks
    high = (laid >> 4).reshape(h, bw, CHANNELS) ^ masks
    low |= dot_pattern(bw, h, shades)
    high |= dot_pattern(bw, h, shades[::-1])
    canvas = np.zeros((h, bw + GAP + w_pic + GAP + bw, CHANNELS), np.uint8)
    canvas[:, :bw] = low
    canvas[:, bw + GAP:bw + GAP + w_pic] = np.asarray(picture.convert("RGB"), np.uint8)
    canvas[:, bw + GAP + w_pic + GAP:] = high
    layout = {
        "image_size": [canvas.shape[1], h],
        "crop_box": [0, 0, canvas.shape[1], h],
        "crop_box_is": "[x0, y0, x1, y1] of the whole file kept by crop_black, x1 / y1 exclusive",
        "columns_are": "x positions inside crop_box (the image after crop_black), first and last inclusive",
        "picture_size": [w_pic, h],
        "block_width": bw,
        "lower_nibble_block_columns": [0, bw - 1],
        "black_gap_columns": [bw, bw + GAP + w_pic],
        "picture_columns": [bw + GAP, bw + GAP + w_pic - 1],
        "upper_nibble_block_columns": [bw + GAP + w_pic + GAP, canvas.shape[1] - 1],
        "json_length": len(json_text(data).encode("utf-8")),
        "compressed_length": len(compressed),
        "laid_out_length": size,
        "compressed_head_hex": compressed[:8].hex(),
        "compressed_sha256": hashlib.sha256(compressed).hexdigest(),
    }
    return Image.fromarray(canvas), layout


# read_pixels (this script's own reader, written from PIXEL_ENCODING): fixture_support.


# --- pictures and files ----------------------------------------------------------

def gradient(w, h, phase):
    """A w x h RGB picture; every pixel has all channels > 0 and no column has all low
    nibbles zero (so it never looks like a gap or gets cropped)."""
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    rgb = np.stack([1 + (40 + 3 * x + phase) % 255, 1 + (40 + 3 * y + 2 * phase) % 255, 200 - 2 * x + y // 4], axis=2)
    assert (rgb > 0).all()
    return Image.fromarray(rgb.astype(np.uint8))


def png_bytes(image, text=None):
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)            # tEXt (uncompressed, Latin-1)
    buf = io.BytesIO()
    image.save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def build():
    """{file: bytes}, {file: what it is (for expected.json)}."""
    files, meta = {}, {}

    d = a1111_dict("pngtext", vectors(3001, 2), 7)
    files["pngtext.png"] = png_bytes(gradient(64, 64, 0), {TEXT_KEY: text_chunk_value(d)})
    meta["pngtext.png"] = {"data": d, "text_chunk": True, "pixels": None}

    d = a1111_dict("pngpixels", vectors(3002, 1), 12)
    img, layout = embed_in_pixels(gradient(64, 64, 17), d)
    files["pngpixels.png"] = png_bytes(img)
    meta["pngpixels.png"] = {"data": d, "text_chunk": False, "pixels": layout}

    d = a1111_dict("pngboth", vectors(3003, 3), 20)
    img, layout = embed_in_pixels(gradient(64, 64, 33), d)
    files["both.png"] = png_bytes(img, {TEXT_KEY: text_chunk_value(d)})
    meta["both.png"] = {"data": d, "text_chunk": True, "pixels": layout}

    files["plain.png"] = png_bytes(gradient(64, 64, 51), {
        "parameters": "a red cube\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x64"})
    meta["plain.png"] = {"data": None, "text_chunk": False, "pixels": None}

    d = a1111_dict("previewembed", vectors(3005, 1), 3)
    img, layout = embed_in_pixels(gradient(64, 64, 70), d)
    files["x.preview.png"] = png_bytes(img, {TEXT_KEY: text_chunk_value(d)})
    meta["x.preview.png"] = {"data": d, "text_chunk": True, "pixels": layout}

    # Pixel data inside an uneven black frame: only crop_black's bounding box (columns from
    # the column mask, rows from the row mask) finds the blocks again.
    d = a1111_dict("pngframed", vectors(3006, 2), 5)
    img, layout = embed_in_pixels(gradient(64, 64, 90), d)
    left, top, right, bottom = FRAME
    framed = Image.new("RGB", (left + img.width + right, top + img.height + bottom))
    framed.paste(img, (left, top))
    layout["frame_left_top_right_bottom"] = list(FRAME)
    layout["image_size"] = [framed.width, framed.height]
    layout["crop_box"] = [left, top, left + img.width, top + img.height]
    files["framed.png"] = png_bytes(framed)
    meta["framed.png"] = {"data": d, "text_chunk": False, "pixels": layout}
    return files, meta


# --- what A1111 reads ------------------------------------------------------------

# a1111_outcome (EmbeddingDatabase.load_from_file for an image, restated): fixture_support.


PIXEL_ENCODING = {
    "summary": ("A1111 modules/textual_inversion/image_embedding.py insert_image_data_embed / "
                "extract_image_data_embed. The zlib stream of the embedding JSON is split into 4-bit "
                "halves: low nibbles in a block LEFT of the picture, high nibbles in a block RIGHT of it, "
                "each block separated from the picture by one all-black column; each nibble is xor-ed "
                "with an LCG mask; the upper nibble of every block pixel is decoration."),
    "payload": ("zlib.compress(json.dumps(data).encode(), level=9): a complete zlib stream (2-byte header, "
                "deflate, Adler-32) of the same JSON text as the text chunk carries before base64 "
                "(json.dumps defaults: ', ' and ': ' separators, floats as Python repr, tensors as "
                "{\"TORCHTENSOR\": nested lists})."),
    "padding": ("n = compressed length, h = picture height. size = n + (h - n % h); size = size + (3h - "
                "size % 3h) (each step adds a full h / 3h when already a multiple). The n bytes are "
                "repeated cyclically to fill size bytes (numpy.resize), so the bytes after the zlib stream "
                "are a copy of its beginning. A reader must stop at the end of the zlib stream and ignore "
                "what follows (Python's zlib.decompress does)."),
    "block_shape": ("Each block is h rows x bw = size / (3h) columns x 3 channels (R, G, B). Byte k of "
                    "the laid-out data goes to row k // (3 bw), column (k // 3) % bw, channel k % 3: "
                    "row-major, pixels left to right, channels R,G,B interleaved."),
    "nibbles": ("Lower block (left) holds byte & 0x0F, upper block (right) holds byte >> 4. Decoded "
                "byte = (upper_nibble << 4) | lower_nibble at the same (row, column, channel)."),
    "lcg": {
        "recurrence": "s_{k+1} = (1664525 * s_k + 1013904223) mod 2^32, s_0 = 0",
        "a": LCG_A, "c": LCG_C, "m": LCG_M, "seed": LCG_SEED,
        "output": "r_k = s_{k+1} mod 255 (k = 0, 1, ...; 255, not 256)",
        "mask": "mask_k = r_k & 0x0F, xor-ed into the low 4 bits of element k of a block",
        "indexing": ("k = (row * block_width + column) * 3 + channel, counted within each block; the "
                     "stream restarts at s_0 = 0 for each block (both blocks use the same masks)"),
        "first_outputs_r": [],      # filled in below
        "first_masks": [],
    },
    "pixel_value": ("block pixel channel = decoration | (nibble ^ mask_k), decoration = the channel's "
                    "upper nibble (multiple of 16). Readers take & 0x0F and ignore it."),
    "decoration": ("Not needed to read. Writer: on a black bw x h canvas, for x in range(-6, bw, 8), for "
                   "the j-th y in range(-6, h, 8): PIL ellipse box (x+o, y, x+o+6, y+6) with o = 4 if j "
                   "is even else 0, gray fill = shades[i % len(shades)], i counting discs in that order; "
                   "decoration = canvas & 0xF0. shades = uint8(|v| / max|v| * 255) (truncated) of the "
                   "first vector's first 1024 values; the upper block uses shades reversed. It makes "
                   "the blocks visible and affects only crop_black (upper nibbles count there)."),
    "layout": ("image width = bw + 1 + W + 1 + bw, height = h (the picture's), RGB, background black "
               "(0,0,0): columns [0, bw) lower block, column bw black, picture, column bw+1+W black, "
               "then the upper block."),
    "reader": [
        "1. Convert to 8-bit RGB (A1111: image.convert('RGB'); alpha dropped, palette expanded).",
        ("2. crop_black(tol=0): a pixel is lit when ALL three channels are > 0 (full 8-bit values, "
         "before masking, decoration included). column_lit[x] = any lit pixel in column x, row_lit[y] "
         "= any lit pixel in row y. Keep x in [first x with column_lit, last x with column_lit] and y "
         "in [first y with row_lit, last y with row_lit] (the bounding box of lit pixels; columns from "
         "the column mask, rows from the row mask). numpy argmax semantics: if no pixel is lit at all, "
         "nothing is cropped (and the read then fails: every column is black, the blocks are empty, "
         "zlib raises)."),
        "3. Take & 0x0F of every channel of the cropped image.",
        ("4. Black columns = columns whose masked values sum to 0 over all rows and channels. Fewer than "
         "2 -> not an embedding (A1111 returns None; load_from_file then ignores the file silently)."),
        ("5. lower block = columns [0, min(black)), upper block = columns (max(black), end]; whatever "
         "lies between (the picture, possibly with black columns of its own) is ignored."),
        "6. xor each block's elements with mask_k, k counted row-major within that block (restart per block).",
        ("7. bytes = ((upper << 4) | lower) row-major (row, column, channel); both blocks must have the "
         "same shape (A1111 would raise on broadcasting otherwise)."),
        ("8. zlib-decompress (stop at the end of the stream, ignore trailing bytes; a bad stream raises, "
         "so A1111 reports 'Error loading embedding' and skips the file), parse JSON; "
         "{\"TORCHTENSOR\": lists} -> a float64 array (A1111 then casts to float32)."),
    ],
}

TEXT_ENCODING = {
    "chunk": ("PNG text chunk keyword 'sd-ti-embedding' (A1111's trainer writes an uncompressed tEXt via "
              "PngInfo.add_text; A1111 reads Image.text, so zTXt/iTXt with that keyword would work too)."),
    "value": ("base64 (standard alphabet, padded, no line breaks) of the UTF-8 JSON text "
              "json.dumps(data) of the embedding dict, tensors as {\"TORCHTENSOR\": nested lists of "
              "floats}: {\"string_to_token\": {\"*\": 265}, \"string_to_param\": {\"*\": {\"TORCHTENSOR\": "
              "[[...32 floats], ...]}}, \"name\": ..., \"step\": ..., \"sd_checkpoint\": ..., "
              "\"sd_checkpoint_name\": ...}."),
    "precedence": ("load_from_file uses the text chunk when the image has one with that keyword and does "
                   "not look at the pixels then; only without it does it try extract_image_data_embed."),
}

LOAD_RULES = {
    "extensions": ".png .webp .jxl .avif (case-insensitive) are opened as images",
    "preview": ("splitext(stem)[1].upper() == '.PREVIEW' (e.g. x.preview.png, X.Preview.PNG) -> return "
                "before opening"),
    "name": ("name = data.get('name', file stem): the name stored in the JSON, not the file name; the stem "
             "only when the JSON has no 'name' key"),
    "vectors": ("the single value of string_to_param, .to(float32); shape = last dim, num_vectors = first "
                "dim; step / sd_checkpoint / sd_checkpoint_name = data.get(key) (None when absent)"),
    "hash": "sha256 of the whole PNG file; shorthash = first 12 hex digits",
    "not_embedding": ("no text chunk and extract_image_data_embed returns None -> ignored silently (a "
                      "preview image); an exception (bad base64/JSON/zlib) -> 'Error loading embedding', "
                      "skipped"),
}


def expected_doc(files, meta):
    masks_r, s = [], LCG_SEED
    for _ in range(16):
        s = (LCG_A * s + LCG_C) % LCG_M
        masks_r.append(s % LCG_MOD)
    enc = json.loads(json.dumps(PIXEL_ENCODING))
    enc["lcg"]["first_outputs_r"] = masks_r
    enc["lcg"]["first_masks"] = [r & 0x0F for r in masks_r]
    recs = {}
    for fname in sorted(files):
        emb, how = a1111_outcome(fname, files[fname])
        m = meta[fname]
        rec = {"bytes": len(files[fname]), "sha256": hashlib.sha256(files[fname]).hexdigest(),
               "has_text_chunk": m["text_chunk"], "has_pixel_data": m["pixels"] is not None}
        if emb is None:
            rec.update({"loaded": False, "reason": how})
        else:
            rec.update({"loaded": True, "read_from": how, "embedding": emb})
        if m["pixels"] is not None:
            rec["pixel_layout"] = m["pixels"]
        if m["data"] is not None and emb is None:
            rec["embedded_name"] = m["data"]["name"]
        recs[fname] = rec
    return {
        "generator": GENERATOR,
        "rerun": ".venv-ref/bin/python Tests/Fixtures/generators/make_png_embedding_fixtures.py [--a1111 PATH/image_embedding.py]",
        "versions": {"numpy": np.__version__, "Pillow": Image.__version__, "torch": torch.__version__,
                     "zlib": zlib.ZLIB_RUNTIME_VERSION, "python": sys.version.split()[0]},
        "embedding_width": WIDTH,
        "files": recs,
        "load_rules": LOAD_RULES,
        "text_encoding": TEXT_ENCODING,
        "pixel_encoding": enc,
    }


# --- self checks -----------------------------------------------------------------

def self_check(files, meta):
    for fname, png in files.items():
        m = meta[fname]
        im = Image.open(io.BytesIO(png))
        assert im.mode == "RGB", (fname, im.mode)
        assert (TEXT_KEY in im.text) == m["text_chunk"], fname
        data, facts = read_pixels(im)
        if m["pixels"] is None:
            assert data is None, fname
            continue
        lay = m["pixels"]
        assert facts["crop"] == lay["crop_box"], (fname, facts)
        assert facts["black_columns"] == lay["black_gap_columns"], (fname, facts)
        assert data == plain_json(m["data"]), fname
        if m["text_chunk"]:
            assert json.loads(base64.b64decode(im.text[TEXT_KEY])) == data, fname
        # exact float32 round trip through the JSON text
        want = m["data"]["string_to_param"]["*"]
        got = torch.tensor(data["string_to_param"]["*"]["TORCHTENSOR"], dtype=torch.float64).float()
        assert torch.equal(got, want), fname


def load_a1111(path):
    shared = types.ModuleType("modules.shared")
    shared.opts = types.SimpleNamespace(font=None)
    pkg = types.ModuleType("modules")
    pkg.shared = shared
    sys.modules.setdefault("modules", pkg)
    sys.modules["modules.shared"] = shared
    spec = importlib.util.spec_from_file_location("a1111_image_embedding", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_with_a1111(path, files, meta, doc):
    ie = load_a1111(path)
    for fname, png in files.items():
        m = meta[fname]
        im = Image.open(io.BytesIO(png))
        if m["pixels"] is not None:
            # same pixels from A1111's writer for the same picture and data
            inner = im.convert("RGB").crop(tuple(m["pixels"]["crop_box"]))
            pic_box = m["pixels"]["picture_columns"]
            picture = inner.crop((pic_box[0], 0, pic_box[1] + 1, inner.size[1]))
            theirs = ie.insert_image_data_embed(picture, m["data"])
            assert np.array_equal(np.asarray(theirs), np.asarray(inner)), fname
        got = ie.extract_image_data_embed(im)
        if m["pixels"] is None:
            assert got is None, fname
        else:
            assert got["name"] == m["data"]["name"] and got["step"] == m["data"]["step"], fname
            assert torch.equal(got["string_to_param"]["*"].float(), m["data"]["string_to_param"]["*"]), fname
        if m["text_chunk"]:
            t = ie.embedding_from_b64(im.text[TEXT_KEY])
            assert torch.equal(t["string_to_param"]["*"].float(), m["data"]["string_to_param"]["*"]), fname
        # load_from_file's image branch, with A1111's readers
        rec = doc["files"][fname]
        stem, _ = os.path.splitext(fname)
        if os.path.splitext(stem)[1].upper() == ".PREVIEW":
            assert not rec["loaded"], fname
            continue
        if TEXT_KEY in im.text:
            data = ie.embedding_from_b64(im.text[TEXT_KEY])
        else:
            data = ie.extract_image_data_embed(im)
            if not data:
                assert not rec["loaded"], fname
                continue
        name = data.get("name", stem)
        vec = data["string_to_param"]["*"].to(torch.float32)
        e = rec["embedding"]
        assert e["name"] == name and e["step"] == data.get("step"), fname
        assert e["sd_checkpoint"] == data.get("sd_checkpoint"), fname
        assert e["sd_checkpoint_name"] == data.get("sd_checkpoint_name"), fname
        assert torch.equal(torch.tensor(e["vectors"], dtype=torch.float32), vec), fname
    lcg = ie.lcg()
    assert [next(lcg) for _ in range(16)] == doc["pixel_encoding"]["lcg"]["first_outputs_r"]
    print(f"A1111 check ({path}): same pixels, every file read back as expected.json says")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a1111", default=os.environ.get("A1111_IMAGE_EMBEDDING"),
                    help="path of A1111's modules/textual_inversion/image_embedding.py (outside the repo)")
    args = ap.parse_args()

    files, meta = build()
    again, _ = build()
    assert files == again, "not deterministic"
    self_check(files, meta)
    doc = expected_doc(files, meta)
    if args.a1111:
        if os.path.abspath(args.a1111).startswith(ROOT + os.sep):
            sys.exit("keep A1111's code outside the repository")
        check_with_a1111(args.a1111, files, meta, doc)

    os.makedirs(OUT_DIR, exist_ok=True)
    out = dict(files)
    out["expected.json"] = (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode("utf-8")
    for fname, b in out.items():
        p = os.path.join(OUT_DIR, fname)
        with open(p + ".tmp", "wb") as f:
            f.write(b)
        os.replace(p + ".tmp", p)
    print("wrote " + ", ".join(f"{k} ({len(v)} B)" for k, v in out.items())
          + f" in {os.path.relpath(OUT_DIR, ROOT)}")
    for fname, rec in doc["files"].items():
        print(f"  {fname}: " + (f"{rec['embedding']['name']} from {rec['read_from']}" if rec["loaded"]
                                 else "ignored"))


if __name__ == "__main__":
    sys.exit(main())

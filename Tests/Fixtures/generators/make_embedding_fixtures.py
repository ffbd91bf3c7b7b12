#!/usr/bin/env python3
"""Makes the textual-inversion fixtures of Tests/PromptingTests:
  Tests/PromptingTests/Fixtures/embeddings/       embedding files (a folder A1111 would scan)
  Tests/PromptingTests/Fixtures/embedding_conditioning.json
the files A1111 (webui 1.10) reads from that folder and the conditioning it
computes for prompts that use them, on the tiny model Tests/Fixtures/tiny-sd/
(CLIP text width 32, full CLIP vocabulary, f16 weights loaded as f32).

Rerun (after scripts/setup_reference_env.sh and make_tiny_sd.py; needs
torch, transformers, safetensors, ftfy and regex in .venv-ref; no network):
    .venv-ref/bin/python Tests/Fixtures/generators/make_embedding_fixtures.py
It rewrites every file of the embeddings folder (and deletes nothing else) and
the JSON. A1111's code restated below (textual_inversion.py loading,
tokenize_line, EmbeddingsWithFixes, encode_a1111 / encode_by_hand) lives in
fixture_support.py, shared with make_pipeline_fixtures.py and
make_training_fixtures.py, as does the slow CLIPTokenizer built from
Sources/Prompting/Resources/bpe_simple_vocab_16e6.txt.gz and parse_prompt_attention. Deterministic: same library versions -> same files
(the vectors come from seeded torch.Generator draws; the script checks that a
second torch.save gives the same bytes).

The embedding files (vectors = seeded randn * 0.02, like trained embeddings)
------------------------------------------------------------------------------
  redshape.pt             A1111 format (torch.save of {"string_to_token": {"*": 265},
                          "string_to_param": {"*": f32 [1, 32], requires_grad}, "name",
                          "step": 500, "sd_checkpoint": "a1b2c3d4e5", "sd_checkpoint_name"})
  bluestyle.pt            A1111 format, 3 vectors, as create_embedding leaves it
                          (step 0, sd_checkpoint None, sd_checkpoint_name None)
  glow-strong.pt          A1111 format, 2 vectors: shares its first token "glow</w>"
                          with sub/glow.bin (longest match first)
  sub/glow.bin            diffusers format: torch.save({"<glow>": f32 [32]}); A1111
                          names it by the FILE STEM "glow", not by the key
  texture-mix.safetensors kohya format: {"emb_params": f16 [2, 32]} (no metadata)
  wide.pt                 A1111 format, width 768: read, then skipped (expected width 32)
  broken.pt               the first half of a valid A1111 .pt: torch.load fails, skipped
  empty.pt                0 bytes: skipped without a message (st_size == 0)
  notes.txt               not an embedding extension: ignored

What A1111 does (and this script does the same)
-----------------------------------------------
1. Loading (modules/textual_inversion/textual_inversion.py, EmbeddingDatabase):
   expected_shape = encode_embedding_init_text(",", 1).shape[1] (= the token
   embedding width, 32 here). os.walk(dir, followlinks=True): every file in the
   folder AND its subfolders; os.stat(f).st_size == 0 -> skipped silently.
   load_from_file(path, filename): name, ext = splitext(filename) (the file
   STEM of the bare file name: "sub/glow.bin" -> "glow"; the subfolder is not
   part of the name), ext.upper() in .PT/.BIN -> torch.load(map_location=cpu),
   .SAFETENSORS -> safetensors.torch.load_file, .PNG/.WEBP/.JXL/.AVIF -> image
   embeddings (not used here), anything else -> ignored. Then
   create_embedding_from_data:
     'string_to_param' in data -> the single value of string_to_param (assert
         one term); vec = it.float(); shape = vec.shape[-1]; vectors = vec.shape[0]
     dict with 'clip_g' and 'clip_l' -> SDXL embedding
     dict whose first value is exactly a torch.Tensor -> "diffuser concept"
         (also kohya's {"emb_params": ...}): assert one key; 1-D -> unsqueeze(0)
     else raise.
     step = data.get('step'), sd_checkpoint = data.get('sd_checkpoint'),
     sd_checkpoint_name = data.get('sd_checkpoint_name') (None for the non-A1111
     formats); hash = sha256 of the whole file, shorthash = hash[:12] (TI hashes).
   shape == expected_shape -> register_embedding, else skipped_embeddings[name]
   (listed as skipped, never matched). Any exception (truncated file) ->
   errors.report, the file is left out, the others still load.
   register_embedding_by_name: ids = cond_stage_model.tokenize([name])[0] =
   tokenizer(name, truncation=False, add_special_tokens=False) -- so the name is
   cleaned and LOWERCASED like prompt text; ids_lookup[ids[0]] = entries sorted
   by len(ids) descending (Python's stable sort: ties keep load order, which is
   os.walk order -- no ties in these files). A second file with the same name
   replaces the first in the lookup (load order decides; not exercised here).
2. Matching (find_embedding_at_position(tokens, offset), called for every
   token of every parsed (text, weight) segment): candidates =
   ids_lookup[tokens[offset]]; the first candidate whose ids equal
   tokens[offset:offset+len(ids)] wins. So matching is on token ids, longest
   name first, case-insensitive (the tokenizer lowercases), whitespace between
   tokens is invisible ("texture - mix" matches "texture-mix"), and a name
   matches inside a longer word exactly when the word's BPE pieces contain the
   name's ids ("darkredshape" = dark|red|shape</w> matches "redshape",
   "afterglow" = after|glow</w> matches "glow"; "redshapes" = red|shapes</w>,
   "bigredshape" = bigre|d|shape</w>, "glowing" = glowing</w> and
   "red shape" = red</w>|shape</w> do not). Matching never spans attention
   segments: "[red]shape" is two segments and does not match.
3. Chunks (modules/sd_hijack_clip.py tokenize_line, 1.10): per token: comma
   bookkeeping / comma backtrack (opts.comma_padding_backtrack, default 20),
   then "if len(chunk.tokens) == 75: next_chunk()", then the embedding lookup.
   A match of emb_len = embedding.vectors: if len(chunk.tokens) + emb_len > 75
   -> next_chunk() first (the current chunk is padded with 49407, multiplier
   1.0; the embedding moves WHOLE to the next chunk, it is never split);
   chunk.fixes.append((len(chunk.tokens), embedding)); chunk.tokens +=
   [0] * emb_len (PLACEHOLDER TOKEN ID 0, the byte token "!"); multipliers +=
   [weight] * emb_len; position += len(name ids). The fix offset counts from
   the first token AFTER BOS. next_chunk pads to 75 with 49407 and wraps
   [49406] + tokens + [49407], multipliers [1.0] + ... + [1.0].
   QUIRK (A1111 bug, recorded as is): the comma backtrack moves tokens and
   multipliers after the last comma to the next chunk but NOT chunk.fixes, so
   an embedding placed after that comma keeps its fix in the OLD chunk (at an
   offset that is now EOS padding there: that row gets the vectors) while the
   new chunk holds its 0 placeholders without a fix (encoded as token 0, "!").
   Prompt "comma backtrack strands a fix" shows it.
4. Encoding (FrozenCLIPEmbedderWithCustomWordsBase.forward/process_tokens),
   chunk by chunk, each a batch of one here: hijack.fixes = [chunk.fixes];
   the text model runs on the chunk's 77 ids with its token_embedding replaced
   by sd_hijack.EmbeddingsWithFixes: rows = token_embedding(ids); for each
   (offset, emb): emb_len = min(77 - offset - 1, vectors); rows =
   cat([rows[:offset+1], vec[:emb_len], rows[offset+1+emb_len:]]) -- i.e. the
   vectors replace the token-embedding rows at offset+1 ... (BOS is row 0),
   BEFORE the position embeddings are added (CLIPTextEmbeddings adds them to
   whatever token_embedding returns). clip_skip 1: z = last_hidden_state.
   Emphasis "Original" (sd_emphasis.EmphasisOriginal) per chunk:
   m = z.mean(); z = z * multipliers[..., None]; z = z * (m / z.mean())
   (multipliers = torch.asarray(python floats) -> float32). Chunks are joined
   with torch.hstack -> [1, 77 * chunks, 32].
   The script computes z twice: (a) A1111's way, the text model with an
   EmbeddingsWithFixes module (A1111's code) in place of token_embedding,
   called with input_ids; (b) by hand: token-embedding rows, vectors
   substituted at offset+1, text_model.embeddings(inputs_embeds=rows) (adds
   position embeddings), the encoder with CLIP's causal mask, final_layer_norm.
   It asserts (a) == (b) bit for bit.
   TI hashes (infotext, textual_inversion_add_hashes_to_infotext default on):
   the used embeddings in order of first use over the chunks,
   "name: shorthash" joined by ", " (":" and "," removed from names).

File layout (tensors are {"shape": [...], "data": [row-major float32 values
written as exact Python floats]}; token ids are ints)
-------------------------------------------------------------------------------
{"generator", "rerun", "versions", "model": {path, sha256 of the text encoder
  weights, "text_width"}, "a1111": {rules, as strings},
 "embeddings_dir": "Tests/PromptingTests/Fixtures/embeddings",
 "expected_width": 32, "placeholder_token": 0, "comma_token": 267,
 "comma_padding_backtrack": 20,
 "files": [{"file" (relative to embeddings_dir, "/" separators), "bytes",
            "sha256", "format", "outcome": "loaded" | "skipped_width" |
            "error" | "skipped_empty" | "ignored_extension", "reason",
            and when A1111 read it: "name", "vectors", "width", "step",
            "sd_checkpoint", "sd_checkpoint_name", "shorthash",
            "key_in_file", "dtype_in_file", "name_ids" (loaded only),
            "vec" (loaded only: [vectors, 32] float32, as A1111 holds it)}],
 "loaded": [names, A1111's order (sorted by name.lower())],
 "skipped": [names in skipped_embeddings],
 "ids_lookup": [{"first_id", "entries": [{"name", "ids"}] (match order)}],
 "prompts": [{"name", "prompt", "comment", "clip_skip": 1,
              "parsed": [[text, weight]] (parse_prompt_attention),
              "token_count" (tokenize_line's count),
              "chunks": [{"tokens": [77 ints], "multipliers": [77 float32],
                          "fixes": [{"offset", "name", "vectors"}]}],
              "matches": [{"segment", "position", "name", "length"}] (every
                  match, in order: segment index, token position in it),
              "ti_hashes": "..." | null,
              "z": [1, 77 * chunks, 32]}]}
"""

import json
import os
import sys
import tempfile
import warnings

import numpy as np
import torch
import safetensors.torch

from transformers import CLIPTextModel  # noqa: E402
from fixture_support import (  # noqa: E402
    ROOT, VOCAB_GZ, COMMA_PADDING_BACKTRACK, ID_END, PLACEHOLDER, EmbeddingDatabase, Hijack, EmbeddingsWithFixes,
    build_tokenizer_files, emphasis_original, enc, encode_a1111, encode_by_hand, f32, load_tokenizer, sha256_bytes,
    sha256_file, tokenize_line, vectors, version)

warnings.filterwarnings("ignore", message=".*torch_dtype.*")
import transformers  # noqa: E402
transformers.logging.set_verbosity_error()   # the max_length / sequence-length notices A1111 also triggers

MODEL = os.path.join(ROOT, "Tests", "Fixtures", "tiny-sd")
FIXTURES = os.path.join(ROOT, "Tests", "PromptingTests", "Fixtures")
EMB_DIR = os.path.join(FIXTURES, "embeddings")
OUT = os.path.join(FIXTURES, "embedding_conditioning.json")
GENERATOR = "Tests/Fixtures/generators/make_embedding_fixtures.py"
MAX_BYTES = 1_500_000

# ID_START, ID_END, CHUNK (75), PLACEHOLDER (0), COMMA_PADDING_BACKTRACK (20) and the vectors'
# scale (randn * 0.02): fixture_support


# --- helpers: fixture_support (enc, f32, sha256_bytes, sha256_file, version, vectors) ---


# --- the embedding files --------------------------------------------------------

def a1111_data(name, vec, step, sd_checkpoint, sd_checkpoint_name):
    """textual_inversion.Embedding.save's dict."""
    return {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": vec},
        "name": name,
        "step": step,
        "sd_checkpoint": sd_checkpoint,
        "sd_checkpoint_name": sd_checkpoint_name,
    }


def torch_save_bytes(obj, stem):
    """torch.save into memory; the archive's record prefix is the file stem,
    as with torch.save(obj, "<stem>.pt")."""
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, stem + ".pt")
        torch.save(obj, p)
        with open(p, "rb") as f:
            b1 = f.read()
        torch.save(obj, p)
        with open(p, "rb") as f:
            b2 = f.read()
    assert b1 == b2, "torch.save is not deterministic"
    return b1


def make_files():
    """{relative path: bytes}, plus what each file is meant to be."""
    files = {}
    red = vectors(1001, 1, 32)
    red.requires_grad_(True)          # as a trained A1111 embedding is saved
    files["redshape.pt"] = torch_save_bytes(
        a1111_data("redshape", red, 500, "a1b2c3d4e5", "tiny-sd"), "redshape")
    files["bluestyle.pt"] = torch_save_bytes(
        a1111_data("bluestyle", vectors(1002, 3, 32), 0, None, None), "bluestyle")
    files["glow-strong.pt"] = torch_save_bytes(
        a1111_data("glow-strong", vectors(1003, 2, 32), 1200, "a1b2c3d4e5", "tiny-sd"), "glow-strong")
    files["sub/glow.bin"] = torch_save_bytes({"<glow>": vectors(1004, 1, 32)[0].clone()}, "glow")
    files["texture-mix.safetensors"] = safetensors.torch.save(
        {"emb_params": vectors(1005, 2, 32, torch.float16)})
    files["wide.pt"] = torch_save_bytes(
        a1111_data("wide", vectors(1006, 1, 768), 100, "0123456789", "sd15"), "wide")
    good = torch_save_bytes(a1111_data("broken", vectors(1007, 1, 32), 10, None, None), "broken")
    files["broken.pt"] = good[: len(good) // 2]
    files["empty.pt"] = b""
    files["notes.txt"] = (b"Fixture folder for textual-inversion embeddings; written by "
                          b"Tests/Fixtures/generators/make_embedding_fixtures.py. A1111 ignores this file (extension).\n")
    formats = {
        "redshape.pt": "a1111", "bluestyle.pt": "a1111", "glow-strong.pt": "a1111",
        "sub/glow.bin": "diffusers", "texture-mix.safetensors": "kohya", "wide.pt": "a1111",
        "broken.pt": "a1111 (truncated)", "empty.pt": "empty", "notes.txt": "text",
    }
    return files, formats


def write_files(files):
    for rel, b in files.items():
        p = os.path.join(EMB_DIR, *rel.split("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        tmp = p + ".tmp"
        with open(tmp, "wb") as f:
            f.write(b)
        os.replace(tmp, p)


# --- A1111 textual_inversion.py / sd_hijack_clip.py / sd_hijack.py (1.10): fixture_support
# (Embedding, create_embedding_from_data, EmbeddingDatabase, PromptChunk, tokenize_line, Hijack,
# EmbeddingsWithFixes, emphasis_original, encode_a1111, encode_by_hand) ----------------------------


# --- prompts ---------------------------------------------------------------------

FILLER_WORDS = ["a", "big", "old", "house", "with", "green", "door", "and", "small", "window",
                "near", "the", "river", "under", "blue", "sky"]


def filler(tok, n):
    words = [FILLER_WORDS[i % len(FILLER_WORDS)] for i in range(n)]
    for w in set(words):
        assert len(tok([w], add_special_tokens=False)["input_ids"][0]) == 1, w
    text = " ".join(words)
    assert len(tok([text], add_special_tokens=False)["input_ids"][0]) == n
    return text


def prompt_specs(tok):
    return [
        ("none", "a photo of a cat on a table", "no embedding: plain conditioning"),
        ("one", "a redshape on a table", "one 1-vector embedding (A1111 format)"),
        ("two", "bluestyle painting of a redshape", "a 3-vector and a 1-vector embedding"),
        ("three", "a redshape in bluestyle with texture-mix",
         "three embeddings; texture-mix is kohya (f16 emb_params, 2 vectors), name of 3 tokens"),
        ("four", "glow, texture-mix, redshape and bluestyle",
         "four embeddings incl. sub/glow.bin (diffusers format, named by file stem)"),
        ("weights", "a (redshape:1.3) in [bluestyle] with ((glow)) and [red]shape",
         "attention weights apply to every vector of an embedding; '[red]shape' is two segments: no match"),
        ("case", "RedShape, REDSHAPE and redShape in Glow",
         "case variants match: the tokenizer lowercases prompt and name alike"),
        ("partial words",
         "two redshapes, a darkredshape, a bigredshape, afterglow, glowing, a red shape, wide, "
         "texture - mix, redshape1",
         "token-id matching: darkredshape (dark|red|shape), afterglow (after|glow), "
         "texture - mix (spaces invisible) and redshape1 match; redshapes, bigredshape, glowing, "
         "red shape do not; wide (skipped width-768 embedding) stays text"),
        ("longest first", "glow-strong light and glow",
         "glow-strong (3 name tokens) and glow share the first token glow</w>: the longer name wins"),
        ("border moves embedding", filler(tok, 73) + " bluestyle sunset",
         "73 tokens, then a 3-vector embedding: 73 + 3 > 75, so chunk 0 is padded (2 x 49407) and "
         "bluestyle starts chunk 1 at offset 0 (never split); no comma, so no backtrack"),
        ("border fits exactly", filler(tok, 74) + " redshape glow",
         "74 tokens + a 1-vector embedding fill chunk 0 exactly (offset 74); glow starts chunk 1"),
        ("comma backtrack strands a fix", filler(tok, 60) + ", redshape " + filler(tok, 16),
         "A1111 QUIRK: the chunk fills 14 tokens after the comma; the comma backtrack moves the "
         "tokens after the comma (incl. redshape's placeholder 0) to chunk 1 but leaves the fix in "
         "chunk 0 at offset 61, now EOS padding there; chunk 1 encodes the placeholder as token 0"),
        ("long: 3-vector at offsets 72 to 75",
         filler(tok, 72) + " bluestyle " + filler(tok, 73) + " (bluestyle:1.2) " + filler(tok, 71)
         + " bluestyle " + filler(tok, 72) + " [bluestyle] sunset",
         "304 tokens, 5 chunks, no comma: bluestyle (3 vectors) met when the chunk holds 72 tokens fits "
         "(chunk 0 offset 72, fills it to 75); met at 73 and 74 it does not fit: the chunk is padded "
         "(2 resp. 1 x 49407) and it starts the next chunk at offset 0 (chunks 2 and 3), weight 1.2 on "
         "all 3 vectors in chunk 2; met at 75 the full chunk is closed first and it starts chunk 4 at "
         "offset 0, weight 1/1.1"),
        ("long: 2- and 1-vector at 74 and 75, BREAK",
         filler(tok, 60) + ", " + filler(tok, 13) + " texture-mix " + filler(tok, 72) + " redshape glow "
         + filler(tok, 40) + " BREAK (glow-strong:0.8) " + filler(tok, 71) + " (texture-mix:1.3)",
         "300 tokens, 4 chunks: chunk 0 holds 74 tokens (a comma at 60) when texture-mix (2 vectors) "
         "comes: 74 + 2 > 75 pads chunk 0 with one 49407 and moves it to chunk 1 offset 0, with NO "
         "comma backtrack (that only runs when a non-comma token meets a chunk of exactly 75); "
         "redshape (1 vector) at 74 fills chunk 1 exactly, glow met at 75 starts chunk 2 at offset 0; "
         "BREAK closes chunk 2 (41 tokens, padded from offset 41); glow-strong (2 vectors, weight 0.8) "
         "starts chunk 3 and texture-mix (weight 1.3) at 73 fills it exactly"),
        ("long: comma backtracks around embeddings",
         filler(tok, 55) + " (bluestyle:1.1), " + filler(tok, 16) + " redshape " + filler(tok, 50)
         + ", [bluestyle] " + filler(tok, 3) + " " + filler(tok, 66) + " glow-strong glow, "
         + filler(tok, 70) + " redshape",
         "297 tokens, 4 chunks. Chunk 0: bluestyle (weight 1.1) at 55-57, a comma at 58, 16 words fill "
         "it; redshape (non-comma) meets the full chunk: backtrack moves the 16 words to chunk 1 and "
         "redshape lands at chunk 1 offset 16 (the fix before the comma stays right). Chunk 1: a comma "
         "at 67, [bluestyle] at 68-70, 4 words fill it; the next word backtracks: the 7 tokens after the "
         "comma (incl. bluestyle's three 0 placeholders) move to chunk 2 but the fix stays in chunk 1 at "
         "offset 68 (A1111 QUIRK, rows 69-71 of chunk 1 are EOS padding and get the 3 vectors; chunk 2 "
         "encodes 0 0 0 without a fix). Chunk 2: glow-strong (2 vectors) at 72 and glow at 74 fill it "
         "exactly; the comma that follows meets the full chunk: no backtrack for a comma, it starts "
         "chunk 3 at offset 0; redshape at chunk 3 offset 71"),
    ]


# --- main ----------------------------------------------------------------------------

def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)

    with open(os.path.join(MODEL, "tiny_sd_info.json")) as f:
        info = json.load(f)
    te_files = {k: v for k, v in info["weight_files"].items() if "text_encoder" in v["path"]}
    for k, wf in te_files.items():
        assert sha256_file(os.path.join(MODEL, wf["path"])) == wf["sha256"], k

    te = CLIPTextModel.from_pretrained(MODEL, subfolder="text_encoder", dtype=torch.float32,
                                       attn_implementation="eager", local_files_only=True).eval()
    width = te.config.hidden_size
    assert width == 32

    with tempfile.TemporaryDirectory() as d:
        tok = load_tokenizer(*build_tokenizer_files(VOCAB_GZ, d))
    assert tok("a photo of an astronaut riding a horse on mars", add_special_tokens=False)["input_ids"] == \
        [320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496]
    vocab = tok.get_vocab()
    comma_token = vocab[",</w>"]
    assert tok.convert_ids_to_tokens([PLACEHOLDER]) == ["!"]

    # files
    files, formats = make_files()
    write_files(files)

    # expected_shape = encode_embedding_init_text(",", 1).shape[1]
    token_embedding = te.text_model.embeddings.token_embedding
    ids = tok(",", max_length=1, return_tensors="pt", add_special_tokens=False)["input_ids"]
    expected_shape = token_embedding(ids).squeeze(0).shape[1]
    assert expected_shape == width

    db = EmbeddingDatabase(tok, expected_shape)
    db.load_from_dir(EMB_DIR)
    assert set(db.report) == set(files), (sorted(db.report), sorted(files))
    assert list(db.word_embeddings) == ["bluestyle", "glow", "glow-strong", "redshape", "texture-mix"], \
        list(db.word_embeddings)
    assert list(db.skipped_embeddings) == ["wide"]
    assert db.report["broken.pt"]["outcome"] == "error"

    file_recs = []
    for rel in sorted(files):
        rec = {"file": rel, "bytes": len(files[rel]), "sha256": sha256_bytes(files[rel]), "format": formats[rel]}
        rec.update(db.report[rel])
        if rec["outcome"] == "loaded":
            e = db.word_embeddings[rec["name"]]
            assert e.shorthash == rec["sha256"][:12]
            rec["name_ids"] = db.tokenize([e.name])[0]
            rec["vec"] = enc(e.vec)
        file_recs.append(rec)

    ids_lookup = [{"first_id": int(k), "entries": [{"name": e.name, "ids": list(i)} for i, e in v]}
                  for k, v in sorted(db.ids_lookup.items())]

    # install EmbeddingsWithFixes (sd_hijack.StableDiffusionModelHijack.hijack)
    hijack = Hijack()
    emb_module = te.text_model.embeddings
    plain_token_embedding = emb_module.token_embedding
    emb_module.token_embedding = EmbeddingsWithFixes(plain_token_embedding, hijack)

    prompts = []
    for name, text, comment in prompt_specs(tok):
        matches, backtracks = [], []
        parsed, chunks, token_count = tokenize_line(text, tok, db, comma_token, matches, backtracks)
        z = encode_a1111(te, hijack, chunks)
        z_hand = encode_by_hand(te, plain_token_embedding, chunks)
        assert torch.equal(z, z_hand), (name, (z - z_hand).abs().max().item())
        assert z.shape == (1, 77 * len(chunks), width)
        for c in chunks:
            assert len(c.tokens) == 77 and len(c.multipliers) == 77
        # without EmbeddingsWithFixes the rows would be token 0's: the embeddings must change z
        if any(c.fixes for c in chunks):
            emb_module.token_embedding = plain_token_embedding
            with torch.no_grad():
                z_plain = torch.hstack([emphasis_original(te(input_ids=torch.asarray([c.tokens])).last_hidden_state,
                                                          torch.asarray([c.multipliers])) for c in chunks])
            emb_module.token_embedding = EmbeddingsWithFixes(plain_token_embedding, hijack)
            assert not torch.equal(z_plain, z), name
        used = {}
        for c in chunks:
            for _, e in c.fixes:
                used[e.name] = e
        ti_hashes = ", ".join(f"{n.replace(':', '').replace(',', '')}: {e.shorthash}"
                              for n, e in used.items() if e.shorthash) or None
        rec = {
            "name": name, "prompt": text, "comment": comment, "clip_skip": 1,
            "parsed": [[t, w] for t, w in parsed],
            "token_count": token_count,
            "chunks": [{"tokens": c.tokens, "multipliers": [f32(m) for m in c.multipliers],
                        "fixes": [{"offset": o, "name": e.name, "vectors": int(e.vectors)} for o, e in c.fixes]}
                       for c in chunks],
            "matches": matches,
            "ti_hashes": ti_hashes,
            "z": enc(z),
        }
        if backtracks:
            rec["comma_backtracks"] = [{"chunk": b["chunk"], "break_location": b["break_location"],
                                        "moved_tokens": b["moved"],
                                        "stranded_fixes": [{"offset": o, "name": n} for o, n in b["stranded_fixes"]]}
                                       for b in backtracks]
        prompts.append(rec)
        print(f"  {name:30s} chunks={len(chunks)} count={token_count:3d} "
              f"fixes={[[(o, e.name) for o, e in c.fixes] for c in chunks]} "
              f"matches={[m['name'] for m in matches]}", flush=True)

    # checks of the rules the prompts are meant to show
    P = {p["name"]: p for p in prompts}
    assert not any(c["fixes"] for c in P["none"]["chunks"])
    assert [m["name"] for m in P["partial words"]["matches"]] == ["redshape", "glow", "texture-mix", "redshape"]
    assert [m["name"] for m in P["case"]["matches"]] == ["redshape"] * 3 + ["glow"]
    assert [m["name"] for m in P["longest first"]["matches"]] == ["glow-strong", "glow"]
    assert [m["name"] for m in P["weights"]["matches"]] == ["redshape", "bluestyle", "glow"]
    b = P["border moves embedding"]["chunks"]
    assert len(b) == 2 and b[0]["tokens"][74:] == [ID_END] * 3 and b[1]["fixes"] == [
        {"offset": 0, "name": "bluestyle", "vectors": 3}] and not b[0]["fixes"]
    b = P["border fits exactly"]["chunks"]
    assert len(b) == 2 and b[0]["fixes"] == [{"offset": 74, "name": "redshape", "vectors": 1}] \
        and b[1]["fixes"] == [{"offset": 0, "name": "glow", "vectors": 1}]
    b = P["comma backtrack strands a fix"]
    assert b["comma_backtracks"][0]["stranded_fixes"] == [{"offset": 61, "name": "redshape"}]
    assert b["chunks"][0]["fixes"] == [{"offset": 61, "name": "redshape", "vectors": 1}]
    assert b["chunks"][0]["tokens"][62] == ID_END and not b["chunks"][1]["fixes"] \
        and b["chunks"][1]["tokens"][1] == PLACEHOLDER

    def fixes(p):
        return [[(f["offset"], f["name"]) for f in c["fixes"]] for c in p["chunks"]]

    def weights(p):
        return [[(f["offset"], c["multipliers"][f["offset"] + 1]) for f in c["fixes"]] for c in p["chunks"]]

    b = P["long: 3-vector at offsets 72 to 75"]
    assert b["token_count"] == 304 and len(b["chunks"]) == 5 and "comma_backtracks" not in b
    assert fixes(b) == [[(72, "bluestyle")], [], [(0, "bluestyle")], [(0, "bluestyle")], [(0, "bluestyle")]]
    assert weights(b) == [[(72, 1.0)], [], [(0, f32(1.2))], [(0, 1.0)], [(0, f32(1 / 1.1))]]
    assert b["chunks"][0]["tokens"][73:76] == [PLACEHOLDER] * 3
    assert b["chunks"][1]["tokens"][74:] == [ID_END] * 3 and b["chunks"][2]["tokens"][75:] == [ID_END] * 2
    assert b["chunks"][3]["tokens"][75] != ID_END and b["chunks"][4]["tokens"][5:] == [ID_END] * 72
    b = P["long: 2- and 1-vector at 74 and 75, BREAK"]
    assert b["token_count"] == 300 and len(b["chunks"]) == 4 and "comma_backtracks" not in b
    assert fixes(b) == [[], [(0, "texture-mix"), (74, "redshape")], [(0, "glow")],
                        [(0, "glow-strong"), (73, "texture-mix")]]
    assert weights(b)[3] == [(0, f32(0.8)), (73, f32(1.3))]
    assert b["chunks"][0]["tokens"][61] == comma_token and b["chunks"][0]["tokens"][75] == ID_END
    assert b["chunks"][2]["tokens"][42:] == [ID_END] * 35
    assert ["BREAK", -1] in b["parsed"]
    b = P["long: comma backtracks around embeddings"]
    assert b["token_count"] == 297 and len(b["chunks"]) == 4
    assert fixes(b) == [[(55, "bluestyle")], [(16, "redshape"), (68, "bluestyle")],
                        [(72, "glow-strong"), (74, "glow")], [(71, "redshape")]]
    assert b["comma_backtracks"] == [
        {"chunk": 0, "break_location": 59, "moved_tokens": 16, "stranded_fixes": []},
        {"chunk": 1, "break_location": 68, "moved_tokens": 7, "stranded_fixes": [{"offset": 68, "name": "bluestyle"}]}]
    assert b["chunks"][1]["tokens"][69:] == [ID_END] * 8
    assert b["chunks"][2]["tokens"][1:4] == [PLACEHOLDER] * 3 and b["chunks"][3]["tokens"][1] == comma_token
    assert weights(b)[0] == [(55, f32(1.1))] and b["chunks"][2]["multipliers"][1:4] == [f32(1 / 1.1)] * 3

    doc = {
        "generator": GENERATOR,
        "rerun": ".venv-ref/bin/python Tests/Fixtures/generators/make_embedding_fixtures.py (rewrites the embeddings folder and "
                 "this file; see the script's docstring)",
        "versions": {"torch": torch.__version__, "transformers": version("transformers"),
                     "safetensors": version("safetensors"), "ftfy": version("ftfy"), "numpy": np.__version__},
        "model": {"path": "Tests/Fixtures/tiny-sd", "text_encoder_weight_files": te_files, "text_width": width,
                  "attention": "CLIP eager, float32"},
        "a1111": {
            "version": "webui 1.10 (modules/textual_inversion/textual_inversion.py, sd_hijack_clip.py, "
                       "sd_hijack.py EmbeddingsWithFixes, sd_emphasis.py)",
            "scan": "os.walk(dir, followlinks=True): the folder and all subfolders; st_size == 0 -> skipped silently; "
                    "extension (case-insensitive) .pt/.bin -> torch.load, .safetensors -> safetensors load_file, "
                    ".png/.webp/.jxl/.avif -> image embeddings, anything else ignored",
            "name": "splitext(bare file name)[0]: the file stem; the subfolder is not part of it; the key inside "
                    "a diffusers/kohya file ('<glow>', 'emb_params') and the 'name' field of an A1111 file are NOT used",
            "formats": "'string_to_param' in data -> its single value; dict with clip_g and clip_l -> SDXL; dict "
                       "whose first value is exactly a torch.Tensor and that has one key (diffusers, kohya "
                       "emb_params) -> that tensor, 1-D unsqueezed to [1, width]; vectors converted to float32",
            "metadata": "step = data.get('step'), sd_checkpoint = data.get('sd_checkpoint'), sd_checkpoint_name = "
                        "data.get('sd_checkpoint_name') (None for diffusers/kohya files); shorthash = sha256(file)[:12]",
            "width": "expected width = token embedding width (encode_embedding_init_text(',', 1).shape[1]); other "
                     "widths -> skipped_embeddings (never matched)",
            "errors": "an exception while loading (truncated file, unknown layout) -> reported, file left out",
            "register": "ids = tokenizer(name, truncation=False, add_special_tokens=False) (cleaned, lowercased); "
                        "ids_lookup[ids[0]] sorted by len(ids) descending (stable: ties keep load order)",
            "match": "find_embedding_at_position(segment_tokens, position): first candidate of "
                     "ids_lookup[tokens[position]] whose ids equal tokens[position:position+len(ids)]; per attention "
                     "segment, never across segments; case-insensitive; depends only on token ids",
            "chunk": "if len(chunk.tokens) == 75: next chunk; then on a match: if len(chunk.tokens) + vectors > 75: "
                     "next chunk (the embedding moves whole); fix (offset = len(chunk.tokens), counted after BOS); "
                     "tokens += [0] * vectors; multipliers += [weight] * vectors; position += len(name ids)",
            "comma_backtrack": "opts.comma_padding_backtrack = 20: when the chunk is full, the next token is not a "
                               "comma and the last comma is within 20 tokens, the tokens/multipliers after the comma "
                               "move to the next chunk; chunk.fixes are NOT moved (A1111 bug, recorded as is)",
            "fixes": "EmbeddingsWithFixes replaces the token-embedding rows offset+1 ... offset+vectors (BOS is row 0), "
                     "min(77 - offset - 1, vectors) of them, before position embeddings are added",
            "emphasis": "per chunk: m = z.mean(); z = z * multipliers (float32); z = z * (m / z.mean()); chunks "
                        "hstacked",
            "ti_hashes": "infotext 'TI hashes': used embeddings in order of first use, 'name: shorthash', ', '-joined",
        },
        "embeddings_dir": "Tests/PromptingTests/Fixtures/embeddings",
        "expected_width": expected_shape,
        "placeholder_token": PLACEHOLDER,
        "comma_token": comma_token,
        "comma_padding_backtrack": COMMA_PADDING_BACKTRACK,
        "files": file_recs,
        "loaded": list(db.word_embeddings),
        "skipped": list(db.skipped_embeddings),
        "ids_lookup": ids_lookup,
        "prompts": prompts,
    }
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    size = len(text.encode("utf-8")) + 1
    assert size < MAX_BYTES, size
    tmp = OUT + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.write("\n")
    os.replace(tmp, OUT)
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({size} bytes), {len(prompts)} prompts, "
          f"{sum(len(p['chunks']) for p in prompts)} chunks; files: "
          + ", ".join(f"{r['file']} {r['bytes']} B {r['outcome']}" for r in file_recs))


if __name__ == "__main__":
    sys.exit(main())

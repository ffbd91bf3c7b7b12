#!/usr/bin/env python3
"""Checks an SDXL textual-inversion embedding written by sdshell, as the tools people use read it.

    .venv-ref/bin/python scripts/check_written_sdxl_embedding.py FILE MODEL_FOLDER [VECTORS]

FILE is a .safetensors (kohya's layout) or a .pt (A1111's dict of the two tensors); MODEL_FOLDER a
diffusers SDXL folder whose text encoders the embedding was made for (the tiny SDXL fixture,
Tests/Fixtures/tiny-sdxl, has no tokenizer folders: the tokenizers are built from sdshell's own
vocabulary, as the fixture generators build them).

  * .safetensors: read with safetensors' own reader (safe_open: keys, dtypes, metadata);
    .pt: torch.load(weights_only=True), then A1111's SDXL branch
    ({k: v.detach().to(float32) for k, v in data.items()}, which fails on any non-tensor key);
  * exactly the keys clip_l and clip_g, float32, shapes [VECTORS, text_encoder width] and
    [VECTORS, text_encoder_2 width], finite;
  * diffusers' StableDiffusionXLPipeline.load_textual_inversion, once per encoder (clip_l with
    text_encoder/tokenizer, clip_g with text_encoder_2/tokenizer_2): the rows added to each token
    table equal the file's vectors, and encode_prompt runs on a prompt holding the token.
Prints what it read; exits 1 on any failure, 2 on bad usage.
"""

import json
import os
import sys
import tempfile

import torch

from check_written_embedding import report  # the same FAIL/OK report and exit status

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "generators"))


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    path, folder = argv[1], argv[2]
    vectors = int(argv[3]) if len(argv) == 4 else None
    errors = []

    def check(cond, msg):
        if not cond:
            errors.append(msg)
        return cond

    widths = {}
    for key, component in (("clip_l", "text_encoder"), ("clip_g", "text_encoder_2")):
        config = os.path.join(folder, component, "config.json")
        if not os.path.isfile(config):
            print(f"{folder}: not an SDXL diffusers folder (no {component}/config.json)", file=sys.stderr)
            return 2
        with open(config) as f:
            widths[key] = json.load(f)["hidden_size"]

    if path.endswith(".safetensors"):
        from safetensors import safe_open
        with safe_open(path, framework="pt") as f:
            keys = sorted(f.keys())
            data = {k: f.get_tensor(k) for k in keys}
            metadata = f.metadata() or {}
        print(f"safetensors: keys {keys}, metadata {metadata}")
    else:
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - report any load failure
            print(f"FAIL: torch.load(weights_only=True) failed: {type(e).__name__}: {str(e).splitlines()[0]}")
            return 1
        if not check(isinstance(raw, dict), f"top level is {type(raw).__name__}, not dict"):
            return report(errors)
        try:  # A1111's textual_inversion.create_embedding_from_data, SDXL branch
            data = {k: v.detach().to(dtype=torch.float32) for k, v in raw.items()}
        except AttributeError as e:
            print(f"FAIL: A1111's SDXL loader would fail: {e}")
            return 1
        keys = sorted(raw.keys())
        print(f"torch.load: keys {keys}")

    check(keys == ["clip_g", "clip_l"], f"keys {keys} != ['clip_g', 'clip_l']")
    if errors:
        return report(errors)
    n = vectors if vectors is not None else data["clip_l"].shape[0]
    for key in ("clip_l", "clip_g"):
        t = data[key]
        print(f"{key}: dtype {str(t.dtype).replace('torch.', '')} shape {list(t.shape)}")
        check(t.dtype == torch.float32, f"{key} dtype {t.dtype} is not float32")
        check(tuple(t.shape) == (n, widths[key]), f"{key} shape {list(t.shape)} != [{n}, {widths[key]}]")
        check(bool(torch.isfinite(t).all()), f"{key} has NaN or inf")
    if errors:
        return report(errors)

    import fixture_support as fs
    from diffusers import StableDiffusionXLPipeline
    with tempfile.TemporaryDirectory() as d:
        tokenizer = fs.load_tokenizer(*fs.build_tokenizer_files(fs.VOCAB_GZ, d))
        tokenizer_2 = fs.load_tokenizer(*fs.build_tokenizer_files(fs.VOCAB_GZ, d))
    pipe = StableDiffusionXLPipeline.from_pretrained(folder, tokenizer=tokenizer, tokenizer_2=tokenizer_2)
    token = "sdshelltoken"
    pipe.load_textual_inversion(data["clip_l"], token=token, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(data["clip_g"], token=token, text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)
    names = [token] + [f"{token}_{i}" for i in range(1, n)]
    for key, encoder, tok in (("clip_l", pipe.text_encoder, pipe.tokenizer), ("clip_g", pipe.text_encoder_2, pipe.tokenizer_2)):
        ids = tok.convert_tokens_to_ids(names)
        rows = encoder.get_input_embeddings().weight[ids].detach()
        check(torch.equal(rows, data[key]), f"{key}: the token rows diffusers added differ from the file's vectors")
        print(f"diffusers: {key} -> tokens {names} ids {ids} in {type(encoder).__name__}; rows equal the file: {torch.equal(rows, data[key])}")
    with torch.no_grad():
        embeds = pipe.encode_prompt(f"a photo of {token}", device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False)
    print(f"diffusers: encode_prompt with the token gives prompt_embeds {list(embeds[0].shape)}, pooled {list(embeds[2].shape)}")
    return report(errors)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

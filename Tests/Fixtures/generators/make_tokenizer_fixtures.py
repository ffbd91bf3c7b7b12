#!/usr/bin/env python3
"""Makes Tests/PromptingTests/Fixtures/tokenizer_corpus.json: CLIP token ids
for a corpus of prompts, as A1111 gets them from the transformers *slow*
CLIPTokenizer.

Rerun (after scripts/setup_reference_env.sh; needs transformers, ftfy and
regex in .venv-ref, and no network):
    .venv-ref/bin/python Tests/Fixtures/generators/make_tokenizer_fixtures.py
The tokenizer files and A1111's attention parser are in fixture_support.py
(build_tokenizer_files, load_tokenizer, parse_prompt_attention).

What it does:
  1. Builds vocab.json / merges.txt in a temp dir from
     Sources/Prompting/Resources/bpe_simple_vocab_16e6.txt.gz, the same way
     OpenAI's clip/simple_tokenizer.py and the HF hub files
     (openai/clip-vit-large-patch14) do. It then loads
     transformers.CLIPTokenizer (the slow one) with the hub's
     tokenizer_config values and checks the known ids of
     "a photo of an astronaut riding a horse on mars". It also checks that
     the tokenizer really cleans text with ftfy.fix_text.
  2. Makes a deterministic corpus of 2,000+ prompts (random.Random(SEED)).
  3. Encodes each prompt the way A1111's FrozenCLIPEmbedderWithCustomWords
     .tokenize does: tokenizer(texts, truncation=False,
     add_special_tokens=False)["input_ids"]. So there is no BOS, no EOS and
     no truncation.
  4. Writes the JSON below. It has a "cleaning" list that shows the
     tokenizer's own text cleaning apart from BPE:
         cleaned = whitespace_clean(ftfy.fix_text(text)).lower()
     (CLIPTokenizer._tokenize in transformers 4.57), plus the regex pieces
     of the cleaned text before BPE.
  5. Prints how much ftfy changes: how many corpus texts ftfy.fix_text
     changes, how many id lists change when fix_text is skipped, and which
     ftfy fixers matter. The same numbers go into "ftfy_effect".

File layout:
    {"generator", "transformers", "ftfy", "regex", "python_unicode",
     "vocab_sha256", "notes",
     "cases":    [{"text", "ids": [int, ...]}, ...],
     "cleaning": [{"text", "fixed", "cleaned", "pieces": [str, ...]}, ...],
     "ftfy_effect": {counts, and "case_indices_with_one_fixer_off": {fixer: [index
                     into "cases", ...]}: the cases whose ids change when only
                     that ftfy fixer is switched off}}
"fixed" is ftfy.fix_text(text). "cleaned" is what CLIPTokenizer._tokenize
sends to the regex. "pieces" is regex.findall(pat, cleaned). A prompt's
"ids" are the BPE ids of all its pieces, joined. A prompt that holds the
literal text <|startoftext|> or <|endoftext|> is first split on those
strings (transformers' added-token trie, case-sensitive, before any
cleaning). See the module notes in NOTES below.
"""

import functools
import hashlib
import html
import json
import os
import random
import sys
import tempfile
import unicodedata

import ftfy
import ftfy.bad_codecs  # noqa: F401  (registers sloppy-windows-1252 etc.)
import regex
import transformers
from transformers import CLIPTokenizer
from transformers.models.clip import tokenization_clip

from fixture_support import ROOT, VOCAB_GZ, build_tokenizer_files, load_tokenizer, parse_prompt_attention  # noqa: E402
OUT = os.path.join(ROOT, "Tests/PromptingTests/Fixtures/tokenizer_corpus.json")
SEED = 20240611
MIN_CASES = 2000
MAX_BYTES = 1_000_000

NOTES = [
    "ids: tokenizer(text, truncation=False, add_special_tokens=False).input_ids "
    "with the transformers slow CLIPTokenizer, ftfy installed (as in A1111).",
    "cleaning in CLIPTokenizer._tokenize: text = whitespace_clean(ftfy.fix_text(text)).lower(); "
    "whitespace_clean = regex.sub(r'\\s+', ' ', t).strip(). No html.unescape call of its own "
    "(unlike OpenAI's simple_tokenizer.basic_clean); HTML entities are only decoded by ftfy "
    "(unescape_html='auto': off for a line that contains '<' and every later line).",
    "pat = regex.compile(r\"<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|"
    "[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+\", regex.IGNORECASE); regex \\s = Unicode White_Space.",
    "before _tokenize, PreTrainedTokenizer.tokenize splits the raw text on the literal "
    "strings <|startoftext|> and <|endoftext|> (case-sensitive) and emits those as 49406/49407; "
    "each remaining chunk is cleaned and tokenized separately.",
    "weight-syntax cases: the text is A1111's parse_prompt_attention output joined "
    "(BREAK -> ' '); A1111 itself tokenizes each weight segment separately, and those segments "
    "are also present as their own cases.",
]


def strip_attention(text):
    """(joined plain text, [segment texts A1111 tokenizes one by one])."""
    parsed = parse_prompt_attention(text)
    joined = []
    segments = []
    for t, w in parsed:
        if w == -1:
            joined.append(" ")
            continue
        joined.append(t)
        segments.append(t)
    return "".join(joined), segments


# --------------------------------------------------------------------------
# Corpus.
# --------------------------------------------------------------------------

SUBJECTS = [
    "a photo of an astronaut riding a horse on mars", "portrait of a young woman", "an old fisherman",
    "a cyberpunk city at night", "a cozy cabin in the woods", "a red fox in the snow", "a dragon",
    "a medieval knight", "a cat wearing a hat", "1girl", "2boys", "a robot", "a lighthouse on a cliff",
    "a bowl of ramen", "an elven archer", "a steampunk airship", "a futuristic sports car",
    "the eiffel tower", "a samurai", "a witch's hut", "an underwater temple", "a wolf howling at the moon",
    "a girl with a pearl earring", "a bustling market", "a space station orbiting saturn",
    "a vintage typewriter", "a koi pond", "an abandoned subway station", "a mushroom forest",
    "a viking longship", "a corgi puppy", "a golden retriever", "an owl", "a phoenix rising from ashes",
    "a desert oasis", "a snowy mountain peak", "a neon-lit alley", "a haunted mansion",
    "a tiny house", "a bioluminescent jellyfish", "an ancient library", "a clockwork heart",
    "a knight's helmet", "a street musician", "a ballerina", "a chef cooking pasta",
]
ADJECTIVES = [
    "beautiful", "highly detailed", "intricate", "ethereal", "gloomy", "vibrant", "minimalist",
    "surreal", "hyperrealistic", "whimsical", "epic", "dramatic", "moody", "serene", "gritty",
    "ornate", "dreamy", "majestic", "cute", "dark", "colorful", "pastel", "monochrome",
]
STYLES = [
    "digital painting", "oil painting", "watercolor", "concept art", "matte painting", "anime style",
    "studio ghibli style", "pixel art", "low poly", "3d render", "octane render", "unreal engine 5",
    "trending on artstation", "photorealistic", "ukiyo-e", "art nouveau", "art deco", "baroque",
    "impressionism", "cel shading", "vaporwave", "synthwave", "charcoal sketch", "ink drawing",
    "isometric", "claymation", "film noir", "pop art", "line art", "cinematic still",
]
LIGHTING = [
    "volumetric lighting", "golden hour", "rim light", "soft lighting", "studio lighting",
    "god rays", "backlit", "dramatic lighting", "neon lights", "candlelight", "overcast",
    "blue hour", "subsurface scattering", "ambient occlusion", "global illumination", "bokeh",
    "hard shadows", "moonlight", "sunset", "chiaroscuro",
]
CAMERA = [
    "35mm", "85mm lens", "f/1.8", "f/2.8", "wide angle", "telephoto", "macro", "tilt-shift",
    "depth of field", "shallow dof", "long exposure", "iso 100", "1/250s", "canon eos r5",
    "nikon d850", "sony a7r iv", "kodak portra 400", "fujifilm", "dslr", "gopro", "drone shot",
    "fisheye", "close-up", "full body shot", "from above", "from below", "dutch angle",
]
QUALITY = [
    "masterpiece", "best quality", "high quality", "ultra detailed", "8k", "4k", "uhd", "hdr",
    "sharp focus", "absurdres", "highres", "award winning", "extremely detailed cg unity 8k wallpaper",
    "intricate details", "professional", "RAW photo",
]
NEGATIVE = [
    "lowres", "bad anatomy", "bad hands", "text", "error", "missing fingers", "extra digit",
    "fewer digits", "cropped", "worst quality", "low quality", "normal quality", "jpeg artifacts",
    "signature", "watermark", "username", "blurry", "deformed", "disfigured", "mutated hands",
    "poorly drawn face", "extra limbs", "ugly", "duplicate", "morbid", "out of frame",
]
FIRST = ["Alva", "Bruno", "Cira", "Dmitri", "Elin", "Fausto", "Greta", "Hiro", "Ines", "Jules",
         "Kasia", "Lorcan", "Mirela", "Niko", "Oona", "Pavel", "Quinn", "Rosalind", "Soren", "Tamsin"]
LAST = ["Vantrell", "Okonkwo", "Marchetti", "Lindqvist", "Haverford", "Zelenko", "Abernathy",
        "Castellanos", "Drummond", "Ferreira", "Kowalczyk", "Nakamura", "Ostrowski", "Pellegrini",
        "Rutherford", "Szabo", "Thorvaldsen", "Uchida", "Whitlock", "Ystad"]
COLORS = ["red", "blue", "green", "golden", "silver", "crimson", "teal", "violet", "amber", "ivory"]

UNICODE_WORDS = [
    "café", "naïve", "résumé", "jalapeño", "über", "straße", "façade", "smörgåsbord", "crème brûlée",
    "São Paulo", "Zürich", "Kraków", "Ærøskøbing", "Þórsmörk", "Ångström", "İstanbul", "ĳssel",
    "Ελληνικά", "ΟΔΥΣΣΕΥΣ", "Σ", "ΣΑΣ", "φωτογραφία", "Москва", "фотография кошки", "ПРИВЕТ мир",
    "Київ", "日本の風景", "東京タワー", "桜の花", "一个女孩", "山水画", "안녕하세요", "한국어",
    "مرحبا بالعالم", "القاهرة", "שלום", "नमस्ते", "हिन्दी", "தமிழ்", "ภาษาไทย", "ქართული",
    "Հայերեն", "ትግርኛ", "ᚠᚢᚦᚨᚱᚲ", "Ꭰꮳ", "ǅemal", "ẞ", "ﬅ", "ſtraße",
]
EMOJI = [
    "😀", "🎨", "🔥", "✨", "❤️", "❤", "👍", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇸", "🇫🇷",
    "🏴󠁧󠁢󠁥󠁮󠁧󠁿", "1️⃣", "#️⃣", "🧑🏿‍🎨", "☕", "⭐", "🌸", "🐉", "🦊", "🌙", "🚀", "👁‍🗨", "🙇‍♀️",
    "🤷🏻‍♂️", "🫠", "🪐",
]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&nbsp;", "&amp;amp;", "&#x27;", "&#8217;",
            "&copy;", "&eacute;", "&NTILDE;", "&AMP;", "&hellip;", "&mdash;", "&#128512;", "&bogus;",
            "&amp", "&#39"]
CURLY = ["“", "”", "‘", "’", "‚", "„", "‛", "‟", "ʼ", "«", "»", "′", "″", "‹", "›"]
PUNCT_RUNS = ["!!!", "...", "?!?", "--", "---", "~~~", "(((", ")))", "[[[", "]]]", "{}{}", "@#$%^&*",
              "<>", "||", "//", "\\\\", "***", "___", "+++", "===", "''", '""', "``", ";;", "::",
              ",,,", ". . .", "-_-", "^_^", ":)", ";-)", "<3", "o_O", "¯\\_(ツ)_/¯", "(╯°□°)╯︵ ┻━┻",
              "…", "—", "–", "•", "·", "§", "¶", "†", "‡", "°", "±", "×", "÷", "→", "←", "⇒", "★", "☆",
              "♪", "♥", "©", "®", "™", "€", "£", "¥", "¢", "$", "%", "&", "#", "@"]
NUMBERS = ["1girl", "2girls", "3boys", "8k", "4k", "16k", "3.5", "0.75", "1920x1080", "1024x768",
           "16:9", "4:3", "2:3", "f/1.4", "1/4000", "ISO 3200", "100%", "-1", "+2.5", "1e-3", "2024",
           "1990s", "'90s", "v1.5", "sd2.1", "sdxl 1.0", "24mm", "50mm", "200mm", "30fps", "60hz",
           "3d", "2d", "2.5d", "4th", "21st century", "1st", "#1", "no.5", "42", "007", "3,000",
           "1,000,000", "½", "¼", "²", "³", "Ⅻ", "①②③", "٣", "१२३", "〇", "𝟙𝟚𝟛", "x²", "m³"]
CONTRACTIONS = ["it's", "don't", "we're", "they've", "I'm", "you'll", "she'd", "IT'S", "DON'T",
                "We'Re", "it’s", "don’t", "we’re", "they’ve", "I’m", "you’ll", "she’d", "it‘s",
                "rock 'n' roll", "'sup", "'tis", "o'clock", "jack-o'-lantern", "rock'n'roll",
                "don''t", "it's'", "'s", "'S", "dogs'", "james's", "ma'am", "y'all'd've", "it'ſ",
                "itʼs", "it‛s", "it′s", "l'amour", "l’été"]
MOJIBAKE_SRC = ["café", "naïve", "über", "señor", "crème brûlée", "“quoted”", "it’s", "—dash—",
                "São Paulo", "Zürich", "fiancée", "€5", "½ price", "Ελληνικά", "Москва", "日本",
                "😀 smile", "…", "•bullet", "coöperate", "Ærø", "ß"]
WHITESPACE = [" ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\t\t", " \n ", "\u00a0", "\u2003", "\u3000",
              "\u2009", "\u202f", "\u200b", "\ufeff", "\u2028", "\u2029", "\u0085", "\x0b", "\x0c",
              "\u1680", "\u205f", "\u180e", "\u2060"]
CONTROLS = ["\x00", "\x07", "\x08", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x91", "\x92", "\x93",
            "\x94", "\x96", "\x9d", "\u206a", "\ufff9", "\ufffd", "\ue000", "\U000f0000"]
FULLWIDTH = ["ＡＢＣ", "１２３", "ｍａｓｔｅｒｐｉｅｃｅ", "ｂｅｓｔ　ｑｕａｌｉｔｙ", "（ｄｅｔａｉｌｅｄ）",
             "ｶﾀｶﾅ", "ﾊﾟﾋﾟﾌﾟ", "！？", "，。", "＆ａｍｐ；", "ＩＴ＇Ｓ", "１ｇｉｒｌ", "￥１０００", "ﾞ"]
LIGATURES = ["ﬁ", "ﬂ", "ﬀ", "ﬃ", "ﬄ", "ﬅ", "ﬆ", "Ĳ", "ĳ", "ǆ", "ǅ", "Ǳ", "ŉ", "æ", "œ", "Œ"]
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "c\u0327", "q\u0303", "x\u0301\u0302", "\u0301",
             "A\u030a", "o\u0328\u0304", "\u1100\u1161\u11a8", "Z\u0351\u036b\u0343\u036a\u0302",
             # U+0345 matches no alternative of the IGNORECASE pattern: findall drops it.
             "x\u0345y", "!\u0345!", "\u03b1\u0345", "\u1fbc"]


def choice(rng, xs):
    return xs[rng.randrange(len(xs))]


def maybe_case(rng, s):
    r = rng.random()
    if r < 0.08:
        return s.upper()
    if r < 0.16:
        return s.title()
    if r < 0.2:
        return s.capitalize()
    return s


def artist(rng):
    name = f"{choice(rng, FIRST)} {choice(rng, LAST)}"
    r = rng.random()
    if r < 0.7:
        return "by " + name
    if r < 0.85:
        return "in the style of " + name
    return name.lower() + " style"


def sd_prompt(rng):
    parts = []
    if rng.random() < 0.5:
        parts += rng.sample(QUALITY, rng.randint(1, 4))
    subj = choice(rng, SUBJECTS)
    if rng.random() < 0.5:
        subj = f"{choice(rng, ADJECTIVES)} {subj}"
    if rng.random() < 0.3:
        subj += f" with {choice(rng, COLORS)} eyes"
    parts.append(subj)
    pools = [STYLES, LIGHTING, CAMERA, ADJECTIVES]
    for _ in range(rng.randint(1, 7)):
        parts.append(choice(rng, choice(rng, pools)))
    for _ in range(rng.randint(0, 2)):
        parts.append(artist(rng))
    parts = [maybe_case(rng, p) for p in parts]
    sep = choice(rng, [", ", ", ", ", ", ",", " , ", ". ", " ", " | ", ";  "])
    return sep.join(parts)


def negative_prompt(rng):
    parts = rng.sample(NEGATIVE, rng.randint(3, 12))
    return choice(rng, [", ", ","]).join(parts)


def weighted_prompt(rng):
    """A prompt with A1111 attention syntax (to be stripped)."""
    parts = []
    pools = [QUALITY, STYLES, LIGHTING, CAMERA, ADJECTIVES, SUBJECTS, NEGATIVE]
    for _ in range(rng.randint(2, 8)):
        t = choice(rng, choice(rng, pools))
        r = rng.random()
        if r < 0.2:
            t = f"({t}:{rng.choice(['1.2', '0.8', '1.5', '1.1', '0.5', '2', '1.05', ' 1.3 '])})"
        elif r < 0.3:
            t = "(" * rng.randint(1, 3) + t + ")" * rng.randint(1, 3)
        elif r < 0.38:
            t = "[" * rng.randint(1, 2) + t + "]" * rng.randint(1, 2)
        elif r < 0.42:
            t = "\\(" + t + "\\)"
        elif r < 0.45:
            words = t.split(" ")
            if len(words) > 1:
                k = rng.randrange(len(words))
                words[k] = f"({words[k]}:1.3)"
            t = " ".join(words)
        elif r < 0.47:
            t = t + " BREAK"
        elif r < 0.49:
            t = "(" + t  # unbalanced
        elif r < 0.5:
            t = t + ":1.2"  # colon without parens is plain text
        parts.append(t)
    return choice(rng, [", ", ",", " "]).join(parts)


def mojibake(rng, s):
    enc = choice(rng, ["sloppy-windows-1252", "sloppy-windows-1252", "latin-1", "macroman",
                       "sloppy-windows-1251"])
    b = s.encode("utf-8")
    try:
        out = b.decode(enc)
    except UnicodeDecodeError:
        out = b.decode("sloppy-windows-1252")
    if rng.random() < 0.15:  # double mojibake
        out = out.encode("utf-8").decode("sloppy-windows-1252")
    return out


def random_unicode_word(rng):
    blocks = [(0x00C0, 0x024F), (0x0370, 0x03FF), (0x0400, 0x04FF), (0x0530, 0x058F), (0x05D0, 0x05EA),
              (0x0600, 0x06FF), (0x0900, 0x097F), (0x0E00, 0x0E7F), (0x1100, 0x11FF), (0x1E00, 0x1EFF),
              (0x2000, 0x206F), (0x2100, 0x214F), (0x2190, 0x21FF), (0x2460, 0x24FF), (0x3040, 0x30FF),
              (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFB00, 0xFB4F), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF),
              (0x1D400, 0x1D7FF), (0x1F300, 0x1FAFF), (0x10000, 0x1007F), (0xE0000, 0xE007F)]
    out = []
    lo, hi = choice(rng, blocks)
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.2:
            lo, hi = choice(rng, blocks)
        for _ in range(50):
            c = chr(rng.randint(lo, hi))
            if unicodedata.category(c) not in ("Cn", "Cs"):
                out.append(c)
                break
    return "".join(out)


def long_word(rng):
    r = rng.random()
    if r < 0.25:
        return choice(rng, "abcxyz") * rng.randint(40, 400)
    if r < 0.5:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(30, 300)))
    if r < 0.65:
        return "supercalifragilisticexpialidocious" * rng.randint(2, 12)
    if r < 0.75:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(20, 120)))
    if r < 0.85:
        return "".join(rng.choice("!?.,-_*#~") for _ in range(rng.randint(20, 200)))
    if r < 0.92:
        return "".join(rng.choice(SUBJECTS).replace(" ", "") for _ in range(rng.randint(2, 6)))
    return "".join(choice(rng, ["日", "本", "語", "ア", "ン", "한", "국", "é", "ß", "ж"]) for _ in range(rng.randint(20, 150)))


def sprinkle(rng, base, items, k):
    words = base.split(" ")
    for _ in range(k):
        pos = rng.randrange(len(words) + 1)
        item = choice(rng, items)
        if rng.random() < 0.5:
            words.insert(pos, item)
        else:
            if words and pos < len(words):
                words[pos] = words[pos] + item
            else:
                words.append(item)
    return " ".join(words)


def hand_cases():
    """Fixed, hand-picked prompts (also used for the cleaning list)."""
    return [
        "a photo of an astronaut riding a horse on mars",
        "masterpiece, best quality, 1girl, detailed eyes",
        "",
        " ",
        "   \t\n  ",
        "  leading and trailing whitespace  ",
        "multiple   spaces\tand\ttabs\nand\nnewlines\r\nand CRLF",
        "Café crème brûlée",
        "cafÃ©",
        "naÃ¯ve cafÃ© in SÃ£o Paulo",
        "â€œquoted textâ€\x9d and itâ€™s fine",
        "Ã¼ber straÃŸe",
        "fish &amp; chips",
        "&lt;lora:foo:0.8&gt;",
        "&lt;b&gt; <i>italic</i> &amp; bold",
        "&quot;hello&quot; &#39;world&#39;",
        "non&nbsp;breaking&nbsp;space",
        "double &amp;amp; escaped",
        "line one &amp; two\n<html> &amp; three\nfour &amp; five",
        "“curly double” and ‘curly single’",
        "it’s a dog’s life, isn’t it",
        "don't stop, we're here, they've gone, I'm fine, you'll see, she'd know",
        "ＡＢＣ １２３ ｆｕｌｌｗｉｄｔｈ",
        "ｶﾀｶﾅ halfwidth",
        "ﬁne ﬂower oﬃce",
        "ÉCOLE ÑANDÚ ÜBER STRASSE ẞ",
        "ΟΔΥΣΣΕΥΣ Σ ΑΣ. ΑΣ1",
        "İstanbul",
        "e\u0301 decomposed",
        "Привет, мир! Γειά σου Κόσμε!",
        "日本の風景, 桜, 富士山",
        "नमस्ते दुनिया",
        "مرحبا بالعالم",
        "a cat 😺 with 👍🏽 and 👨‍👩‍👧‍👦 under 🇯🇵 🏳️‍🌈",
        "1girl, 8k, 3.5, 1920x1080, f/1.8, 100%",
        "<|startoftext|>a cat<|endoftext|>",
        "a <|endoftext|> b",
        "A <|ENDOFTEXT|> B",
        "&lt;|endoftext|&gt;",
        "zero\u200bwidth\ufeffbom\u2060joiner",
        "\x1b[31mred\x1b[0m text",
        "ctrl\x00\x07\x7fchars",
        "c1 \x93quoted\x94 \x85next",
        "\u00a0nbsp\u2003em\u3000ideographic\u2028line\u2029para",
        "it'ſ",
        "Ꭰꮳ cherokee",
        "supercalifragilisticexpialidocious" * 3,
        "!!!???...,,,;;;",
        "¯\\_(ツ)_/¯",
        "x² ½ Ⅻ ①",
    ]


def weighted_hand():
    return [
        "masterpiece, best quality, 1girl, (detailed:1.2) eyes",
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        "\\(literal\\] brackets",
        "(unbalanced",
        "(unnecessary)(parens)",
        "landscape BREAK portrait, (sky:1.2)",
        "(red)dish [blue]berry",
        "(masterpiece: 1.2 ), (best quality:1.4), [[lowres]]",
    ]


def build_corpus(rng):
    cases = []
    segments_extra = []

    def add(t):
        cases.append(t)

    for t in hand_cases():
        add(t)
    weighted_src = weighted_hand() + [weighted_prompt(rng) for _ in range(160)]
    for w in weighted_src:
        joined, segs = strip_attention(w)
        add(joined)
        segments_extra.extend(segs)
    for _ in range(420):
        add(sd_prompt(rng))
    for _ in range(80):
        add(negative_prompt(rng))
    for p in PUNCT_RUNS:
        add(f"a cat{p}a dog")
    for _ in range(60):
        add(sprinkle(rng, sd_prompt(rng), PUNCT_RUNS, rng.randint(1, 4)))
    for n in NUMBERS:
        add(f"{n}, masterpiece")
    for _ in range(60):
        add(sprinkle(rng, sd_prompt(rng), NUMBERS, rng.randint(1, 4)))
    for c in CONTRACTIONS:
        add(c)
    for _ in range(60):
        add(sprinkle(rng, sd_prompt(rng), CONTRACTIONS, rng.randint(1, 3)))
    for w in UNICODE_WORDS:
        add(w)
        add(w.lower())
        add(w.upper())
    for _ in range(80):
        add(sprinkle(rng, sd_prompt(rng), UNICODE_WORDS, rng.randint(1, 4)))
    for e in EMOJI:
        add(f"a cat {e}")
        add(f"{e}{e}")
    for _ in range(50):
        add(sprinkle(rng, sd_prompt(rng), EMOJI, rng.randint(1, 4)))
    for e in ENTITIES:
        add(f"salt {e} pepper")
        add(f"a{e}b")
    for _ in range(40):
        add(sprinkle(rng, sd_prompt(rng), ENTITIES, rng.randint(1, 3)))
    for _ in range(15):  # a '<' anywhere on the line switches html unescaping off for that line
        add(sprinkle(rng, sd_prompt(rng) + " <3", ENTITIES, rng.randint(1, 3)))
        add(sprinkle(rng, "<lora " + sd_prompt(rng), ENTITIES, 2) + "\n" + sprinkle(rng, negative_prompt(rng), ENTITIES, 2))
        add(sprinkle(rng, negative_prompt(rng), ENTITIES, 2) + "\n<" + sprinkle(rng, sd_prompt(rng), ENTITIES, 2))
    for q in CURLY:
        add(f"{q}hello{q} world's")
    for _ in range(50):
        words = sd_prompt(rng).split(", ")
        for i in range(len(words)):
            if rng.random() < 0.4:
                a, b = choice(rng, [("“", "”"), ("‘", "’"), ("«", "»"), ("„", "“"), ('"', '"')])
                words[i] = a + words[i] + b
        add(", ".join(words))
    for f in FULLWIDTH:
        add(f)
    for _ in range(40):
        add(sprinkle(rng, sd_prompt(rng), FULLWIDTH, rng.randint(1, 3)))
    for lg in LIGATURES:
        add(f"{lg}ower {lg}")
    for _ in range(20):
        add(sprinkle(rng, sd_prompt(rng), ["ﬁ", "ﬂ", "ﬃ", "oﬀ", "ﬁne", "ﬂame"], rng.randint(1, 3)))
    for c in COMBINING:
        add(f"{c} word {c}x")
    for s in MOJIBAKE_SRC:
        add(mojibake(random.Random(s), s))
    for _ in range(100):
        base = sprinkle(rng, sd_prompt(rng), UNICODE_WORDS + MOJIBAKE_SRC, rng.randint(1, 3))
        if rng.random() < 0.6:
            add(mojibake(rng, base))
        else:  # only part of the text mangled
            words = base.split(" ")
            k = rng.randrange(len(words))
            words[k] = mojibake(rng, words[k])
            add(" ".join(words))
    for ws in WHITESPACE:
        add(f"{ws}a{ws}cat{ws}{ws}on{ws}")
    for _ in range(60):
        t = sd_prompt(rng)
        t = "".join(ch if ch != " " or rng.random() < 0.6 else choice(rng, WHITESPACE) for ch in t)
        add(choice(rng, WHITESPACE) + t + choice(rng, WHITESPACE))
    for c in CONTROLS:
        add(f"a{c}b {c}cat")
    for _ in range(30):
        add(sprinkle(rng, sd_prompt(rng), CONTROLS, rng.randint(1, 3)))
    for _ in range(30):
        add(sprinkle(rng, "a photo of " + long_word(rng), [long_word(rng)], 1))
    for _ in range(90):
        add(" ".join(random_unicode_word(rng) for _ in range(rng.randint(1, 5))))
    for _ in range(60):  # everything at once
        pool = PUNCT_RUNS + NUMBERS + CONTRACTIONS + UNICODE_WORDS + EMOJI + ENTITIES + CURLY + FULLWIDTH + LIGATURES
        add(maybe_case(rng, sprinkle(rng, sd_prompt(rng), pool, rng.randint(2, 6))))
    for s in segments_extra:
        add(s)

    seen = set()
    out = []
    for t in cases:
        if t in seen:
            continue
        # Lone surrogates cannot round-trip through JSON into Swift strings.
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in t)
        seen.add(t)
        out.append(t)
    return out


# --------------------------------------------------------------------------
# Main.
# --------------------------------------------------------------------------

FTFY_SWITCHES = [
    ("unescape_html", False), ("remove_terminal_escapes", False), ("fix_encoding", False),
    ("restore_byte_a0", False), ("replace_lossy_sequences", False), ("decode_inconsistent_utf8", False),
    ("fix_c1_controls", False), ("fix_latin_ligatures", False), ("fix_character_width", False),
    ("uncurl_quotes", False), ("fix_line_breaks", False), ("fix_surrogates", False),
    ("remove_control_chars", False), ("normalization", None),
]


def encode_all(tok, texts, fix):
    tok.fix_text = fix  # BPE results (tok.cache) do not depend on the cleaning
    return tok(texts, truncation=False, add_special_tokens=False)["input_ids"]


def main():
    with open(VOCAB_GZ, "rb") as f:
        vocab_sha = hashlib.sha256(f.read()).hexdigest()
    assert vocab_sha == "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a", vocab_sha

    transformers.logging.set_verbosity_error()  # "sequence longer than 77" warnings
    with tempfile.TemporaryDirectory() as d:
        vocab_path, merges_path = build_tokenizer_files(VOCAB_GZ, d)
        tok = load_tokenizer(vocab_path, merges_path)

    # The slow tokenizer, not the fast one, with ftfy in use.
    assert type(tok) is CLIPTokenizer and not tok.is_fast
    assert tok.fix_text is not None and tok.fix_text is ftfy.fix_text, tok.fix_text
    assert not getattr(tok, "do_lower_case", False)  # the kwarg is ignored; no pre-lowercasing
    assert len(tok) == 49408 and tok.bos_token_id == 49406 and tok.eos_token_id == 49407
    expected = [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407]
    got = tok("a photo of an astronaut riding a horse on mars").input_ids
    assert got == expected, got
    assert tok("ÀFTER &amp; café").input_ids == tok("àfter & café").input_ids
    # ftfy is really on the path: ligatures, curly quotes and mojibake are repaired.
    assert tok("\ufb01ne it\u2019s caf\u00c3\u00a9").input_ids == tok("fine it's café").input_ids

    ws_clean = tokenization_clip.whitespace_clean
    real_fix = ftfy.fix_text

    rng = random.Random(SEED)
    texts = build_corpus(rng)
    assert len(texts) >= MIN_CASES, len(texts)

    ids = encode_all(tok, texts, real_fix)
    cases = [{"text": t, "ids": i} for t, i in zip(texts, ids)]

    # Every id is a real vocab entry; no unknown-token fallback was needed.
    assert all(0 <= x < 49408 for i in ids for x in i)

    # ---- cleaning examples ------------------------------------------------
    cleaning = []
    for t in hand_cases():
        if "<|" in t:
            continue  # those are split by the added-token trie before cleaning
        fixed = real_fix(t)
        cleaned = ws_clean(fixed).lower()
        # Same as what CLIPTokenizer._tokenize does internally:
        tok.fix_text = real_fix
        pieces = regex.findall(tok.pat, cleaned)
        cleaning.append({"text": t, "fixed": fixed, "cleaned": cleaned, "pieces": pieces})

    # ---- ftfy effect ------------------------------------------------------
    identity = lambda s: s  # noqa: E731
    ids_no_ftfy = encode_all(tok, texts, identity)
    changed_text = [t for t in texts if real_fix(t) != t]
    changed_ids = [t for t, a, b in zip(texts, ids, ids_no_ftfy) if a != b]
    per_fixer = {}
    per_fixer_cases = {}
    for name, value in FTFY_SWITCHES:
        fix = functools.partial(ftfy.fix_text, **{name: value})
        alt = encode_all(tok, texts, fix)
        hit = [k for k, (a, b) in enumerate(zip(ids, alt)) if a != b]
        per_fixer[name] = len(hit)
        if hit:
            per_fixer_cases[name] = hit
    # html.unescape as an extra step (what OpenAI's basic_clean adds) would change:
    oa_fix = lambda s: html.unescape(html.unescape(real_fix(s)))  # noqa: E731
    alt = encode_all(tok, texts, oa_fix)
    openai_basic_clean_diff = sum(1 for a, b in zip(ids, alt) if a != b)
    # lowercasing per the Python rule vs. str.lower() char by char (Greek final sigma):
    sigma_cases = sum(1 for t in texts if "Σ" in real_fix(t))
    tok.fix_text = real_fix

    ftfy_effect = {
        "cases": len(texts),
        "fix_text_changes_text": len(changed_text),
        "ids_differ_without_ftfy": len(changed_ids),
        "ids_differ_with_one_fixer_off": per_fixer,
        # indices into "cases" for each count above (e.g. skip "fix_encoding" ones
        # if the Swift port does not repair mojibake)
        "case_indices_with_one_fixer_off": per_fixer_cases,
        "ids_differ_if_html_unescape_x2_added_like_openai": openai_basic_clean_diff,
        "cases_with_capital_sigma_after_fix": sigma_cases,
    }

    doc = {
        "generator": "Tests/Fixtures/generators/make_tokenizer_fixtures.py (seed %d)" % SEED,
        "transformers": transformers.__version__,
        "ftfy": ftfy.__version__,
        "regex": regex.__version__,
        "python_unicode": unicodedata.unidata_version,
        "vocab_sha256": vocab_sha,
        "notes": NOTES,
        "cases": cases,
        "cleaning": cleaning,
        "ftfy_effect": ftfy_effect,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    lines = ["{"]
    head = {k: v for k, v in doc.items() if k not in ("cases", "cleaning", "ftfy_effect")}
    for k, v in head.items():
        lines.append(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},")
    lines.append('"ftfy_effect": ' + json.dumps(ftfy_effect, ensure_ascii=False) + ",")
    lines.append('"cleaning": [')
    lines.append(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cleaning))
    lines.append("],")
    lines.append('"cases": [')
    lines.append(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases))
    lines.append("]}")
    data = ("\n".join(lines) + "\n").encode("utf-8")
    assert json.loads(data.decode("utf-8")) == doc
    assert len(data) < MAX_BYTES, len(data)
    with open(OUT, "wb") as f:
        f.write(data)

    print(f"wrote {os.path.relpath(OUT, ROOT)}: {len(cases)} cases, {len(cleaning)} cleaning, {len(data)} bytes")
    print(json.dumps(ftfy_effect, indent=1))
    return changed_text, changed_ids


if __name__ == "__main__":
    main()

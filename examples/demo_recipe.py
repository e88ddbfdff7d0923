#!/usr/bin/env python3
"""Builds the embedded demo's inputs from the King James Bible text (public domain, see README.md).

  demo_recipe.py text KJV.txt OUT.jsonl        one JSON line {"text": ...} per chapter, verse numbers dropped
  demo_recipe.py tokenizer OUT_DIR             character-level tokenizer.json + tokenizer_config.json
  demo_recipe.py dataset KJV.txt DATA_DIR      last three letters of a word: demo_train.json, demo_test.json
  demo_recipe.py split TEXT.jsonl OUT_DIR      every tenth chapter (0, 10, ...) to heldout.jsonl, the rest to
                                               train.jsonl: the quality benchmarks' held-out and calibration text

Everything is deterministic (fixed seeds, sorted inputs), so the recipe regenerates the same files.
"""
import json
import random
import re
import sys
from pathlib import Path

SPECIAL = ["<pad>", "<s>", "</s>", "<unk>"]
# every character the demo's texts and prompts use: newline and printable ASCII
CHARS = ["\n"] + [chr(c) for c in range(32, 127)]

SEED = 1611
TRAIN_WORDS = 2000
TEST_WORDS = 100
INSTRUCTION = "Write the last three letters of the word."


def chapters(kjv_path):
    """The chapters of the output of `bible gen1:1-rev22:21`: header lines 'Book N', verses '  N text...'."""
    current = []
    for line in Path(kjv_path).read_text(encoding="ascii", errors="replace").splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):  # a chapter header such as "Genesis 1"
            if current:
                yield " ".join(current)
            current = []
            continue
        current.append(re.sub(r"^\s*\d+\s+", "", line.strip()))
    if current:
        yield " ".join(current)


def write_text(kjv_path, out_path):
    with open(out_path, "w", encoding="utf-8") as out:
        for chapter in chapters(kjv_path):
            clean = "".join(c if c in CHARS else " " for c in chapter)
            out.write(json.dumps({"text": clean}) + "\n")


def write_tokenizer(out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate(SPECIAL + CHARS)}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, t in enumerate(SPECIAL)],
        "normalizer": None,
        # every character is its own piece
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated",
                          "invert": False},
        "post_processor": None,
        # pieces are joined without separators
        "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
    }
    (out_dir / "tokenizer.json").write_text(json.dumps(tokenizer, indent=1) + "\n", encoding="utf-8")
    config = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
              "add_bos_token": False, "add_eos_token": False, "model_max_length": 256,
              "tokenizer_class": "PreTrainedTokenizerFast"}
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    generation = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "do_sample": False}
    (out_dir / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n", encoding="utf-8")


def write_dataset(kjv_path, data_dir):
    """Lower-case KJV words of 4 to 9 letters and their last three letters ("lambs" -> "mbs"), shuffled with a
    fixed seed; test words never occur in training."""
    counts = {}
    for chapter in chapters(kjv_path):
        for word in re.findall(r"[A-Za-z]+", chapter):
            word = word.lower()
            counts[word] = counts.get(word, 0) + 1
    words = sorted(w for w in counts if 4 <= len(w) <= 9)
    random.Random(SEED).shuffle(words)
    test, train = words[:TEST_WORDS], words[TEST_WORDS:TEST_WORDS + TRAIN_WORDS]
    data_dir = Path(data_dir)
    for name, part in (("demo_train.json", train), ("demo_test.json", test)):
        records = [{"instruction": INSTRUCTION, "input": w, "output": w[-3:]} for w in part]
        (data_dir / name).write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")


def write_split(text_path, out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = Path(text_path).read_text(encoding="utf-8").splitlines(keepends=True)
    (out_dir / "heldout.jsonl").write_text("".join(lines[0::10]), encoding="utf-8")
    (out_dir / "train.jsonl").write_text("".join(l for i, l in enumerate(lines) if i % 10), encoding="utf-8")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "text" and len(sys.argv) == 4:
        write_text(sys.argv[2], sys.argv[3])
    elif command == "tokenizer" and len(sys.argv) == 3:
        write_tokenizer(sys.argv[2])
    elif command == "dataset" and len(sys.argv) == 4:
        write_dataset(sys.argv[2], sys.argv[3])
    elif command == "split" and len(sys.argv) == 4:
        write_split(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)

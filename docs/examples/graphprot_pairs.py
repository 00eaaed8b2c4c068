"""GraphProt-style FASTA pairs from a labelled CLIP FASTA experiment (iONMF / deepRAM RBP-31).

Writes ``OUT/elavl1_{train,test}.{positives,negatives}.fa``: RNA (T read as U), lowercase
flanks around an uppercase viewpoint of 31-61 nt at the centre, positives and negatives in two
files (GraphProt's layout), 3,000 + 3,000 training and 1,000 + 1,000 test records.

Usage: python docs/examples/graphprot_pairs.py EXPERIMENT_DIR OUT
"""

import gzip
import random
import sys
from pathlib import Path

src, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
random.seed(0)
for split, name, n in (("train", "training.fa.gz", 3000), ("test", "test.fa.gz", 1000)):
    records: dict[str, list[str]] = {}
    header = ""
    with gzip.open(src / name, "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                header = line[1:].strip()
                records[header] = []
            else:
                records[header].append(line.strip())
    kept: dict[str, list[str]] = {"1": [], "0": []}
    for header, parts in records.items():
        seq = "".join(parts).replace("T", "U")
        width = random.randint(31, 61)
        a = (len(seq) - width) // 2
        label = header.rsplit("class:", 1)[1].strip()
        if len(kept[label]) < n:
            rid = header.split(";")[0].strip()
            kept[label].append(f">{rid}\n{seq[:a].lower()}{seq[a : a + width]}{seq[a + width :].lower()}\n")
    (out / f"elavl1_{split}.positives.fa").write_text("".join(kept["1"]))
    (out / f"elavl1_{split}.negatives.fa").write_text("".join(kept["0"]))

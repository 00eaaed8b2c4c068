"""Re-create the FCS fixtures of this directory from the Bodenmiller 2012 files.

python tests/data/cells/make_fixtures.py /work/shared/data/cellcnn/bodenmiller2012_pbmc8_bcrxl_fcs
"""

import sys
import warnings
from pathlib import Path

import flowio
import numpy as np

N_CELLS = 500
FILES = [
    ("PBMC8_30min_patient1_Reference.fcs", "Ref", "1"),
    ("PBMC8_30min_patient1_BCR-XL.fcs", "BCRXL", "1"),
    ("PBMC8_30min_patient2_Reference.fcs", "Ref", "2"),
    ("PBMC8_30min_patient2_BCR-XL.fcs", "BCRXL", "2"),
]

src, dst = Path(sys.argv[1]), Path(__file__).parent
rows = ["file,label,patient"]
for i, (name, label, patient) in enumerate(FILES):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fd = flowio.FlowData(str(src / name), ignore_offset_error=True)
    ev = fd.as_array(preprocess=False)
    rng = np.random.default_rng(i)
    ev = ev[np.sort(rng.choice(len(ev), N_CELLS, replace=False))].astype(np.float32)
    pnn = [fd.channels[k + 1]["pnn"] for k in range(fd.channel_count)]
    pns = [fd.channels[k + 1]["pns"] for k in range(fd.channel_count)]
    out = name.replace("PBMC8_30min_", "").replace(".fcs", "_500.fcs")
    with open(dst / out, "wb") as fh:
        flowio.create_fcs(fh, ev.ravel().tolist(), pnn, opt_channel_names=pns)
    rows.append(f"{out},{label},{patient}")
(dst / "samples.csv").write_text("\n".join(rows) + "\n")

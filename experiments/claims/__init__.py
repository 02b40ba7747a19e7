"""Headline claims of each paper, checked against the result files an experiment wrote.

One function per paper: `CLAIMS[name](run_dir, preset) -> {"claims": [row, ...], "results":
[files read], "figures": [files], "notes": [...]}`, with rows from `claims.rows`. Every
"ours" is computed from the files under `run_dir`; papers' numbers and the tolerances come
from ../shared/REFERENCES.md (approximate values read off plots are tolerances, as that page
says) or, where it gives none, from the experiment's own targets, and the note says which.
Where a preset shrinks the setup the claim is restated for it. One module per paper family.
"""
from experiments.claims.classification import chan2022, reddy2023
from experiments.claims.emergence import besiroglu2024, nanda2023, schaeffer2023
from experiments.claims.language import olsson2022, xie2021
from experiments.claims.regression import garg2022, raventos2023
from experiments.claims.rows import FAIL, NOT_SHOWN, PASS

CLAIMS = {"garg2022": garg2022, "raventos2023": raventos2023, "chan2022": chan2022,
          "reddy2023": reddy2023, "olsson2022": olsson2022, "xie2021": xie2021,
          "schaeffer2023": schaeffer2023, "nanda2023": nanda2023, "besiroglu2024": besiroglu2024}
STATUSES = (PASS, FAIL, NOT_SHOWN)

#!/usr/bin/env python3
"""Split the shipped model's evaluation prompt list into the two lists docs/QUANTIZATION.md uses:

  tools/quant/calibration.txt         64 prompts of the "seen_pairs" set (emoji/colour pairs from the training
                                      distribution), every 240/64-th: the calibration prompts of `diffusion quantize`
  tools/quant/report.json             the 480 "heldout_pairs" prompts with seeds and file names: the report prompts
                                      of `diffusion quantize --report`, scorable by tools/eval/score.py
  tools/quant/report-240.json         every second entry of report.json (240 distinct prompts, one seed each): the
                                      list docs/QUANTIZATION.md's tables use, half the generation time

Calibration and report prompts are disjoint sets. Input: the JSON that `tools/train/evaluate.py prompts` writes.

    /usr/bin/python3 tools/train/evaluate.py prompts --out /tmp/prompts.json
    /usr/bin/python3 tools/quant/prompts.py /tmp/prompts.json
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    entries = json.load(open(sys.argv[1]))
    seen = [e for e in entries if e["set"] == "seen_pairs"]
    calibration = [seen[i * len(seen) // 64] for i in range(64)]
    with open(HERE / "calibration.txt", "w") as f:
        f.write("# 64 seen_pairs prompts (tools/quant/prompts.py); prompt i is calibrated with seed i\n")
        for e in calibration:
            f.write(e["prompt"] + "\n")
    report = [e for e in entries if e["set"] == "heldout_pairs"]
    with open(HERE / "report.json", "w") as f:
        json.dump(report, f, indent=1)
    with open(HERE / "report-240.json", "w") as f:
        json.dump(report[::2], f, indent=1)
    print(f"wrote {len(calibration)} calibration, {len(report)} and {len(report[::2])} report prompts")


if __name__ == "__main__":
    main()

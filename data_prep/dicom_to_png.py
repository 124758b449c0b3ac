"""Convert a folder of DICOM files to 8-bit PNGs with their contrast intact, keeping the folder layout.

    python data_prep/dicom_to_png.py SRC_DIR DST_DIR

Applies the rescale slope/intercept and the stored window (VOI LUT), inverts MONOCHROME1, takes the
middle frame of multi-frame files, and maps colour and palette images to RGB. Files that cannot be
read are listed at the end with the reason; nothing is skipped silently.
"""

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from medr1.data.images import dicom_to_image


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--suffixes", nargs="*", default=[".dcm", ".dicom", ""],
                        help="file suffixes to convert ('' = files without a suffix)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    files = sorted(p for p in args.src.rglob("*") if p.is_file() and p.suffix.lower() in args.suffixes)
    failed = []
    for path in tqdm(files, unit="file"):
        target = (args.dst / path.relative_to(args.src)).with_suffix(".png")
        if target.is_file():
            continue  # resumable: converted on an earlier run
        try:
            image = dicom_to_image(path)
        except Exception as error:  # report every unreadable file, keep converting the rest
            failed.append((path, f"{type(error).__name__}: {error}"))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target)
    for path, reason in failed:
        logging.error("not converted: %s (%s)", path, reason)
    logging.info("%d of %d files converted to %s; %d failed", len(files) - len(failed), len(files), args.dst,
                 len(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

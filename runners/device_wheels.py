"""Fill .whl/ with what a lent GPU machine needs to run arcvdm and lacks: its image holds PyTorch and the numerical
stack but not diffusers, pydantic or submitit, and nothing can be fetched there (docs/mini.md, "The GPU session in one
call").

    python runners/device_wheels.py                     # .whl/: CPython 3.12, manylinux x86-64 (the image's python)
    python runners/device_wheels.py --python 3.11 --dest DIR   # for another python (a local test of the chain)

Every package arcvdm depends on, at the version installed here (so the device runs what CI tests), except torch and
the image's own builds of the numerical stack (KEPT_FROM_IMAGE). `runners/gpu_mini.sh` installs the folder with
`pip install --no-index --no-deps --target` when it is carried.
"""

import argparse
import importlib.metadata as md
import re
import subprocess
import sys

from packaging.requirements import Requirement

# The image's builds (torch is CUDA's there; the others are large and any recent version serves arcvdm).
KEPT_FROM_IMAGE = frozenset({"torch", "numpy", "scipy", "scikit-image", "pillow", "networkx", "tifffile", "imageio",
                             "lazy-loader"})
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str = "arcvdm", skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """Every installed distribution `root` needs (its extras left out), by canonical name -> installed version, except
    `skip` and what only they need."""
    found: dict[str, str] = {}
    todo = [root]
    while todo:
        name = canonical(todo.pop())
        if name in found or name in skip:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # a marker-guarded need of another platform or python
        found[name] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    found.pop(canonical(root))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", default=".whl")
    parser.add_argument("--python", default="3.12", help="the device image's python (KINDS.md of the device tool)")
    args = parser.parse_args()
    pins = [f"{n}=={v}" for n, v in sorted(closure(skip=KEPT_FROM_IMAGE).items())]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
           args.python, "--implementation", "cp", "-d", args.dest, *[f"--platform={p}" for p in PLATFORMS], *pins]
    subprocess.run(cmd, check=True)
    print(f"{len(pins)} wheels in {args.dest}: carry it (`carry: [\"{args.dest}\"]`) with runners/gpu_mini.sh")


if __name__ == "__main__":
    main()

"""The one compiled piece: mldashfs.fs._passthrough (see its source). Optional: without a C compiler
or libfuse3-dev the install goes on and the mount serves reads itself."""

import subprocess

from setuptools import Extension, setup


def fuse3_include_dirs() -> list[str]:
    """libfuse3's header folder, as pkg-config reports it (Debian's when pkg-config is missing)."""
    try:
        flags = subprocess.run(["pkg-config", "--cflags-only-I", "fuse3"], capture_output=True, text=True,
                               check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return ["/usr/include/fuse3"]
    return [f[2:] for f in flags if f.startswith("-I")]


setup(
    ext_modules=[
        Extension(
            "mldashfs.fs._passthrough",
            sources=["mldashfs/fs/_passthrough.c"],
            include_dirs=fuse3_include_dirs(),
            libraries=["fuse3", "dl"],
            optional=True,
        )
    ]
)

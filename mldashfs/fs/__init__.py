"""The FUSE daemon: pyfuse3 `Operations` over the Store, served under trio by `mldashfs mount`.

`_passthrough` is loaded first and RTLD_GLOBAL, so that pyfuse3, imported after it, binds its
`fuse_session_mount` and `fuse_reply_open` (see `_passthrough.c`); without it reads go through the daemon.
"""

import os
import sys

_flags = sys.getdlopenflags()
sys.setdlopenflags(_flags | os.RTLD_GLOBAL)
try:
    from . import _passthrough  # type: ignore[attr-defined]  # noqa: F401
except ImportError:  # not compiled (no C compiler or libfuse3-dev at install)
    pass
finally:
    sys.setdlopenflags(_flags)

"""The FUSE daemon: pyfuse3 `Operations` over the Store, served under trio by `mldashfs mount`."""

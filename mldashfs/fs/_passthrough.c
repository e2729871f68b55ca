/* Kernel FUSE passthrough for readers, and shared mmap of direct-I/O files, on a libfuse (3.14)
 * that predates both.
 *
 * With passthrough the kernel serves a reader's read() and mmap() straight from a backing file, the
 * version's blob, instead of asking the daemon: one page cache, no copies, near bare-disk speed.
 * It needs two things libfuse 3.14 cannot say: FUSE_PASSTHROUGH (and a stack depth) in the INIT
 * reply, and FOPEN_PASSTHROUGH with a backing id in an open reply. The INIT reply also gets
 * FUSE_DIRECT_IO_ALLOW_MMAP, so that writers (direct I/O) can be mapped shared (numpy memmap r+,
 * SQLite's WAL index).
 *
 * This module is loaded RTLD_GLOBAL before pyfuse3 (see __init__.py), so pyfuse3's calls of
 * fuse_session_mount and fuse_reply_open bind here:
 *  - fuse_session_mount installs libfuse's custom I/O, plain read/writev/splice that add those
 *    bits to the INIT reply when the kernel offers them;
 *  - fuse_reply_open sends FOPEN_PASSTHROUGH and the backing id for a file handle carrying
 *    PASSTHROUGH_MARK (bit 63; the id in bits 32-62), and strips both from the handle. Such
 *    handles are readers: FOPEN_NOFLUSH spares their close() a round trip to the daemon.
 * Everything else is libfuse's own code path. Python calls `request(False)` before mounting to
 * keep passthrough off, asks `enabled()` afterwards, and registers blobs with
 * `open_backing(fd)` / `close_backing(id)` (the FUSE_DEV_IOC_BACKING_* ioctls, root only).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

/* The kernel ABI (include/uapi/linux/fuse.h, protocol 7.40): Debian 12's headers are 7.38. */
#define OP_INIT 26
#define INIT_EXT (1u << 30)
#define INIT_WRITEBACK_CACHE (1u << 16)
#define INIT2_PASSTHROUGH (1u << 5) /* FUSE_PASSTHROUGH is bit 37: bit 5 of flags2 */
#define INIT2_ALLOW_MMAP (1u << 4)  /* FUSE_DIRECT_IO_ALLOW_MMAP (bit 36): shared mmap of direct-I/O files */
#define OPEN_PASSTHROUGH (1u << 7)  /* FOPEN_PASSTHROUGH */
#define OPEN_NOFLUSH (1u << 5)      /* FOPEN_NOFLUSH: a reader's close has nothing to flush */
#define STACK_DEPTH 2               /* blobs may sit on a stacked filesystem (overlayfs) themselves */
#define PASSTHROUGH_MARK (1ull << 63)

struct in_header { uint32_t len, opcode; uint64_t unique, nodeid; uint32_t uid, gid, pid; uint16_t extlen, pad; };
struct init_in { uint32_t major, minor, max_readahead, flags, flags2; };
struct out_header { uint32_t len; int32_t error; uint64_t unique; };
struct init_out {
    uint32_t major, minor, max_readahead, flags;
    uint16_t max_background, congestion_threshold;
    uint32_t max_write, time_gran;
    uint16_t max_pages, map_alignment;
    uint32_t flags2, max_stack_depth;
    uint32_t unused[6];
};
struct open_out { uint64_t fh; uint32_t open_flags; int32_t backing_id; };
struct backing_map { int32_t fd; uint32_t flags; uint64_t padding; };
#define IOC_BACKING_OPEN _IOW(229, 1, struct backing_map)
#define IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

static struct fuse_session *session;  /* the one session pyfuse3 mounts in this process */
static uint64_t init_unique;          /* the INIT request's id, 0 until it arrives */
static uint32_t kernel_flags2;        /* what the INIT request offered in flags2 (0 without INIT_EXT) */
static int init_answered;             /* the INIT reply went out (patched or not) */
static int enabled;                   /* the INIT reply asked for passthrough */
static int wanted = 1;                /* ask for it (see request()) */

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
    ssize_t n = read(fd, buf, len);
    (void)userdata;
    if (!init_unique && n >= (ssize_t)(sizeof(struct in_header) + sizeof(struct init_in))) {
        const struct in_header *h = buf;
        const struct init_in *in = (const void *)(h + 1);
        if (h->opcode == OP_INIT) {
            init_unique = h->unique;
            kernel_flags2 = (in->flags & INIT_EXT) ? in->flags2 : 0;
        }
    }
    return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    (void)userdata;
    if (init_unique && !init_answered && count == 2 && iov[0].iov_len == sizeof(struct out_header)
        && iov[1].iov_len >= sizeof(struct init_out)) {
        const struct out_header *h = iov[0].iov_base;
        struct init_out *out = iov[1].iov_base;
        if (h->unique == init_unique && h->error == 0) {
            init_answered = 1;
            if (kernel_flags2 & INIT2_ALLOW_MMAP) {
                out->flags |= INIT_EXT;
                out->flags2 |= INIT2_ALLOW_MMAP;
            }
            if (wanted && (kernel_flags2 & INIT2_PASSTHROUGH) && !(out->flags & INIT_WRITEBACK_CACHE)) {
                out->flags |= INIT_EXT;
                out->flags2 |= INIT2_PASSTHROUGH;
                out->max_stack_depth = STACK_DEPTH;
                enabled = 1;
            }
        }
    }
    return writev(fd, iov, count);
}

static ssize_t io_splice(int fdin, off_t *offin, int fdout, off_t *offout, size_t len, unsigned int flags,
                         void *userdata)
{
    (void)userdata;
    return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io plain_io = {io_writev, io_read, io_splice, io_splice};

/* libfuse's own function, looked up once: this module defines the same name. */
static void *libfuse_symbol(const char *name)
{
    void *lib = dlopen("libfuse3.so.3", RTLD_NOW | RTLD_NOLOAD);
    return lib ? dlsym(lib, name) : NULL;
}

int fuse_session_mount(struct fuse_session *se, const char *mountpoint)
{
    static int (*real)(struct fuse_session *, const char *);
    if (!real && !(real = libfuse_symbol("fuse_session_mount")))
        return -1;
    int res = real(se, mountpoint);
    if (res == 0 && fuse_session_custom_io(se, &plain_io, fuse_session_fd(se)) == 0)
        session = se;
    return res;
}

int fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
    static int (*real)(fuse_req_t, const struct fuse_file_info *);
    if (enabled && (fi->fh & PASSTHROUGH_MARK)) {
        struct open_out arg = {
            .fh = fi->fh & 0xffffffffu,
            .open_flags = OPEN_PASSTHROUGH | OPEN_NOFLUSH,
            .backing_id = (int32_t)((fi->fh & ~PASSTHROUGH_MARK) >> 32),
        };
        struct iovec iov = {&arg, sizeof arg};
        return fuse_reply_iov(req, &iov, 1);
    }
    if (!real && !(real = libfuse_symbol("fuse_reply_open")))
        return -ENOSYS;
    return real(req, fi);
}

static PyObject *py_request(PyObject *self, PyObject *arg)
{
    int yes = PyObject_IsTrue(arg);
    if (yes < 0)
        return NULL;
    wanted = yes;
    Py_RETURN_NONE;
}

static PyObject *py_enabled(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(session != NULL && enabled);
}

static PyObject *py_open_backing(PyObject *self, PyObject *arg)
{
    struct backing_map map = {.fd = (int32_t)PyLong_AsLong(arg)};
    if (PyErr_Occurred())
        return NULL;
    if (!session || !enabled) {
        errno = EOPNOTSUPP;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    int id = ioctl(fuse_session_fd(session), IOC_BACKING_OPEN, &map);
    if (id < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(id);
}

static PyObject *py_close_backing(PyObject *self, PyObject *arg)
{
    uint32_t id = (uint32_t)PyLong_AsUnsignedLong(arg);
    if (PyErr_Occurred())
        return NULL;
    if (!session || ioctl(fuse_session_fd(session), IOC_BACKING_CLOSE, &id) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"request", py_request, METH_O, "Whether the next mount's INIT asks for passthrough (default True)."},
    {"enabled", py_enabled, METH_NOARGS, "True once the mount's INIT asked the kernel for passthrough."},
    {"open_backing", py_open_backing, METH_O, "Register an open fd as a backing file; returns its id."},
    {"close_backing", py_close_backing, METH_O, "Drop a backing id (files opened with it keep it)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_passthrough",
    .m_doc = "Kernel FUSE passthrough on libfuse 3.14 (see _passthrough.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__passthrough(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddObject(m, "MARK", PyLong_FromUnsignedLongLong(PASSTHROUGH_MARK)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

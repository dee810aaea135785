// Small pieces of C that Swift cannot express safely: code that runs inside a signal handler.
#ifndef SILO_SHIMS_H
#define SILO_SHIMS_H
#include <sys/types.h>

/// Installs handlers for SIGINT, SIGTERM and SIGHUP that forward the signal to a process group.
/// A signal that arrives before `silo_forward_signals_to` names the group is remembered and
/// forwarded as soon as it does, so none is lost between spawn and setup.
void silo_install_forwarding_handlers(void);

/// Names the process group (its leader's pid) that forwarded signals go to; replays a pending one.
void silo_forward_signals_to(pid_t pgid);

/// The last signal received by the handlers, or 0.
int silo_last_forwarded_signal(void);

/// flock(2). Swift imports `struct flock` and the function under one name and picks the struct,
/// so the call goes through here.
int silo_flock(int fd, int operation);

/// statfs(2): the filesystem's magic number (f_type). Returns -1 and sets errno on failure.
int silo_statfs_type(const char *path, long *type);

/// statvfs(3): bytes available to unprivileged users and total bytes. -1 and errno on failure.
int silo_statvfs_space(const char *path, long long *available, long long *total);

/// posix_spawn_file_actions_addchdir_np(3) (glibc >= 2.29), for a spawned child's working directory.
int silo_spawn_addchdir(void *actions, const char *path);

/// The fields of statx(2) silo uses. `mnt_id` is 0 when the kernel does not report it (< 5.8).
struct silo_stat {
    unsigned long long dev, ino, nlink, mnt_id;
    unsigned int mode, uid, gid;
    long long size, blocks, mtime, mtime_nsec;
};

/// statx(2) of `name` relative to `dirfd` ("" for dirfd itself), not following a final symlink
/// unless `follow`. -1 and errno on failure.
int silo_statx(int dirfd, const char *name, int follow, struct silo_stat *out);

/// ioctl(FICLONE): makes `dest_fd` share all of `src_fd`'s extents (reflink). -1 and errno
/// (EOPNOTSUPP, EXDEV, EINVAL) where the filesystem cannot.
int silo_ficlone(int dest_fd, int src_fd);

/// copy_file_range(2) from the current offsets of both descriptors: bytes copied, 0 at the end,
/// -1 and errno on failure (EXDEV, EINVAL, ENOSYS where the kernel or filesystem cannot).
long long silo_copy_file_range(int in_fd, int out_fd, unsigned long long length);

/// One extent of a file, as FS_IOC_FIEMAP reports it.
struct silo_extent {
    unsigned long long logical, physical, length;
    int shared;
};

/// ioctl(FS_IOC_FIEMAP) from byte `start`: up to `capacity` (<= 64) extents into `out`, their number
/// in `count`, and whether the file's last extent is among them in `last`. -1 and errno on failure.
int silo_fiemap(int fd, unsigned long long start, struct silo_extent *out, int capacity, int *count, int *last);

/// fork + setpgid(0,0) + setgroups(0) + setgid + setuid + execve, with default dispositions and an
/// empty mask in the child. Returns the pid; when the child could not exec, `child_errno` says why
/// (the child has then exited 127). -1 and `child_errno` when fork failed.
pid_t silo_spawn_as(const char *path, char *const argv[], char *const envp[], uid_t uid, gid_t gid, int *child_errno);

/// The commit silo was built from ("unknown" when the build did not say).
const char *silo_build_commit(void);

#endif

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

#endif

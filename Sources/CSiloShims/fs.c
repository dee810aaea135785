// statfs(2) and statvfs(3), whose struct and function share a name that Swift cannot tell apart.
#include "silo_shims.h"
#include <sys/vfs.h>
#include <sys/statvfs.h>

int silo_statfs_type(const char *path, long *type) {
    struct statfs s;
    if (statfs(path, &s) != 0) return -1;
    *type = (long)s.f_type;
    return 0;
}

int silo_statvfs_space(const char *path, long long *available, long long *total) {
    struct statvfs s;
    if (statvfs(path, &s) != 0) return -1;
    *available = (long long)s.f_bavail * (long long)s.f_frsize;
    *total = (long long)s.f_blocks * (long long)s.f_frsize;
    return 0;
}

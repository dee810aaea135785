// ioctl(2) calls that Swift cannot make (ioctl is variadic): FICLONE and FS_IOC_FIEMAP; and
// copy_file_range(2), which glibc declares only under _GNU_SOURCE.
#define _GNU_SOURCE
#include <unistd.h>
#include "silo_shims.h"
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <linux/fiemap.h>

int silo_ficlone(int dest_fd, int src_fd) {
    return ioctl(dest_fd, FICLONE, src_fd);
}

int silo_fiemap(int fd, unsigned long long start, struct silo_extent *out, int capacity, int *count, int *last) {
    // One call maps up to `capacity` extents from `start`; the caller loops from the end of the last.
    size_t size = sizeof(struct fiemap) + (size_t)capacity * sizeof(struct fiemap_extent);
    char buffer[sizeof(struct fiemap) + 64 * sizeof(struct fiemap_extent)];
    if (capacity > 64) { errno = EINVAL; return -1; }
    struct fiemap *map = (struct fiemap *)buffer;
    memset(map, 0, size);
    map->fm_start = start;
    map->fm_length = ~0ULL - start;
    map->fm_flags = FIEMAP_FLAG_SYNC;
    map->fm_extent_count = (unsigned)capacity;
    if (ioctl(fd, FS_IOC_FIEMAP, map) != 0) return -1;
    *count = (int)map->fm_mapped_extents;
    *last = 0;
    for (unsigned i = 0; i < map->fm_mapped_extents; i++) {
        struct fiemap_extent *e = &map->fm_extents[i];
        out[i].logical = e->fe_logical;
        out[i].physical = e->fe_physical;
        out[i].length = e->fe_length;
        out[i].shared = (e->fe_flags & FIEMAP_EXTENT_SHARED) != 0;
        if (e->fe_flags & FIEMAP_EXTENT_LAST) *last = 1;
    }
    return 0;
}

long long silo_copy_file_range(int in_fd, int out_fd, unsigned long long length) {
    return (long long)copy_file_range(in_fd, NULL, out_fd, NULL, (size_t)length, 0);
}

// statx(2) with the mount id, which fstatat cannot give: a bind mount of a directory of the same
// filesystem has the same st_dev as its surroundings, so only the mount id tells it apart.
#define _GNU_SOURCE
#include "silo_shims.h"
#include <fcntl.h>
#include <sys/stat.h>

int silo_statx(int dirfd, const char *name, int follow, struct silo_stat *out) {
    struct statx sx;
    int flags = AT_STATX_SYNC_AS_STAT | (follow ? 0 : AT_SYMLINK_NOFOLLOW);
    if (name[0] == '\0') flags |= AT_EMPTY_PATH;
    if (statx(dirfd, name, flags, STATX_BASIC_STATS | STATX_MNT_ID, &sx) != 0) return -1;
    out->dev = ((unsigned long long)sx.stx_dev_major << 32) | sx.stx_dev_minor;
    out->ino = sx.stx_ino;
    out->mode = sx.stx_mode;
    out->nlink = sx.stx_nlink;
    out->uid = sx.stx_uid;
    out->gid = sx.stx_gid;
    out->size = (long long)sx.stx_size;
    out->blocks = (long long)sx.stx_blocks;
    out->mtime = (long long)sx.stx_mtime.tv_sec;
    out->mtime_nsec = (long long)sx.stx_mtime.tv_nsec;
    out->mnt_id = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0;
    return 0;
}

// posix_spawn_file_actions_addchdir_np is a GNU extension that Glibc's Swift module does not show.
#define _GNU_SOURCE
#include <spawn.h>
#include "silo_shims.h"

int silo_spawn_addchdir(void *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np((posix_spawn_file_actions_t *)actions, path);
}

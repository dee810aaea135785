// flock(2) under a name Swift can call (see silo_shims.h).
#include "silo_shims.h"
#include <sys/file.h>

int silo_flock(int fd, int operation) { return flock(fd, operation); }
